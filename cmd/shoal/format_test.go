package main

import (
	"bytes"
	"slices"
	"testing"
	"time"
)

func TestNaturalLess(t *testing.T) {
	names := []string{"worker-10", "manager-1", "worker-2", "worker-02", "node", "Worker-3", "worker-1a", "worker-1", "node-9", "node-10"}
	slices.SortFunc(names, func(a, b string) int {
		switch {
		case naturalLess(a, b):
			return -1
		case naturalLess(b, a):
			return 1
		}
		return 0
	})
	want := []string{"Worker-3", "manager-1", "node", "node-9", "node-10", "worker-1", "worker-1a", "worker-2", "worker-02", "worker-10"}
	if !slices.Equal(names, want) {
		t.Errorf("got %q\nwant %q", names, want)
	}
}

func TestHumanDuration(t *testing.T) {
	for d, want := range map[time.Duration]string{
		500 * time.Millisecond:   "Less than a second",
		time.Second:              "1 second",
		5 * time.Second:          "5 seconds",
		time.Minute:              "About a minute",
		59 * time.Minute:         "59 minutes",
		time.Hour:                "About an hour",
		47 * time.Hour:           "47 hours",
		3 * 24 * time.Hour:       "3 days",
		20 * 24 * time.Hour:      "2 weeks",
		90 * 24 * time.Hour:      "3 months",
		3 * 365 * 24 * time.Hour: "3 years",
	} {
		if got := humanDuration(d); got != want {
			t.Errorf("humanDuration(%v) = %q, want %q", d, got, want)
		}
	}
}

type testRow struct {
	ID   string
	Name string
	Note string
}

func (r testRow) MarshalJSON() ([]byte, error) { return marshalRow(r) }

func TestWriteListing(t *testing.T) {
	l := listing{
		table:   "table {{.ID}}\t{{.Name}}\t{{.Note}}",
		headers: map[string]string{"ID": "ID", "Name": "NAME", "Note": "NOTE"},
	}
	rows := []testRow{{"abc", "web", "<a&b>"}, {"defghijklmnop", "db", ""}}
	for _, tc := range []struct {
		format string
		quiet  bool
		want   string
	}{
		{"", false, "ID              NAME      NOTE\nabc             web       <a&b>\ndefghijklmnop   db        \n"},
		{"table", true, "abc\ndefghijklmnop\n"},
		{"json", false, `{"ID":"abc","Name":"web","Note":"<a&b>"}` + "\n" + `{"ID":"defghijklmnop","Name":"db","Note":""}` + "\n"},
		{"json", true, `{"ID":"abc","Name":"web","Note":"<a&b>"}` + "\n" + `{"ID":"defghijklmnop","Name":"db","Note":""}` + "\n"},
		{`{{.Name}}\t{{truncate .ID 4}}`, false, "web\tabc\ndb\tdefg\n"},
		{`table {{upper .Name}}:{{lower .ID | title}}`, false, "NAME:ID\nWEB:Abc\nDB:Defghijklmnop\n"},
		{`table {{json .Name}}`, false, "NAME\n\"web\"\n\"db\"\n"},
		{`table {{.Missing}}`, false, ""}, // no such field: an execution error
		{`{{join .Name ","}}`, false, ""}, // join wants a list: an execution error
	} {
		var buf bytes.Buffer
		err := writeListing(&buf, l, tc.format, tc.quiet, rows)
		if tc.want == "" {
			if err == nil {
				t.Errorf("format %q: want an error", tc.format)
			}
			continue
		}
		if err != nil || buf.String() != tc.want {
			t.Errorf("format %q quiet=%v: got %q, %v\nwant %q", tc.format, tc.quiet, buf.String(), err, tc.want)
		}
	}
}

func TestWriteInspectEmpty(t *testing.T) {
	var buf bytes.Buffer
	if err := writeInspect[testRow](&buf, "", nil); err != nil || buf.String() != "[]\n" {
		t.Errorf("got %q, %v", buf.String(), err)
	}
	buf.Reset()
	if err := writeInspect[testRow](&buf, "json", nil); err != nil || buf.String() != "[]\n" {
		t.Errorf("json: got %q, %v", buf.String(), err)
	}
}
