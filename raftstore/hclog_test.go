package raftstore

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
)

func TestHCLoggerLevels(t *testing.T) {
	var buf bytes.Buffer
	l := NewHCLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})).With("component", "raft"))
	l.Info("entering follower state")
	l.Debug("debugging")
	l.Named("net").With("peer", "b").Warn("failed to contact", "time", 3)
	l.Error("boom")
	out := buf.String()
	if strings.Contains(out, "entering follower state") || strings.Contains(out, "debugging") {
		t.Errorf("raft info/debug written at slog info level:\n%s", out)
	}
	for _, want := range []string{"level=WARN", "component=raft", "logger=net", "peer=b", "time=3", "level=ERROR msg=boom"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if l.IsInfo() || !l.IsWarn() || l.GetLevel() != hclog.Warn {
		t.Errorf("IsInfo %v IsWarn %v GetLevel %v", l.IsInfo(), l.IsWarn(), l.GetLevel())
	}
	if got := l.Named("a").Named("b").Name(); got != "a.b" {
		t.Errorf("nested name %q", got)
	}
	buf.Reset()
	l.Named("a").Named("b").Warn("x")
	if strings.Count(buf.String(), "logger=") != 1 {
		t.Errorf("name repeated: %s", buf.String())
	}
	buf.Reset()
	l.StandardLogger(&hclog.StandardLoggerOptions{ForceLevel: hclog.Error}).Print("from std log")
	if !strings.Contains(buf.String(), "level=ERROR") {
		t.Errorf("standard logger: %s", buf.String())
	}
}
