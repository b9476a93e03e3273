package integration

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/shoal-dev/shoal/integration/clustertest"
	"github.com/shoal-dev/shoal/integration/testhost"
)

// chromiumPath is Debian's chromium (scripts/deps.sh installs it).
const chromiumPath = "/usr/bin/chromium"

// The dashboard in a real browser: node-02's page shows the cluster, and
// after the leader is killed it names the new leader without a reload.
func TestDashboardShowsTheNewLeaderWithoutAReload(t *testing.T) {
	requireChromium(t)
	c := newServiceCluster(t, 4, 3, "--dashboard-addr", "0.0.0.0:8080")
	c.lan.AttachRoot(t)
	c.node(1).MustCLI(t, "service", "create", "-d", "--name", "web", "--replicas", "4", c.images.Nginx)

	b := startBrowser(t)
	url := "http://" + c.node(2).Host.IP + ":8080/"
	start := time.Now()
	b.do(t, chromedp.Navigate(url))
	// A reload would lose this: the page must change by itself.
	b.do(t, chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[string](`window.shoalTestMarker = "same page"`)(ctx, tg)
		return err
	}))

	page := b.waitPage(t, settle, "node-02's dashboard to show node-01 leading 3 managers, 4 nodes and 4 running tasks", func(p dashPage) error {
		switch {
		case p.Leader != "node-01":
			return fmt.Errorf("leader %q", p.Leader)
		case len(p.Managers) != 3 || p.Nodes != 4:
			return fmt.Errorf("managers %v, %d nodes", p.Managers, p.Nodes)
		case p.Running != 4:
			return fmt.Errorf("%d tasks running", p.Running)
		}
		return nil
	})
	t.Logf("the page showed the cluster %s after it opened (connection %s, quorum %q)",
		time.Since(start).Round(time.Millisecond), page.Connection, page.Quorum)

	c.node(1).Kill(t)
	killed := time.Now()
	page = b.waitPage(t, failover, "the page to name a new leader without a reload", func(p dashPage) error {
		switch {
		case p.Marker != "same page":
			return fmt.Errorf("the page was reloaded (marker %q)", p.Marker)
		case p.Leader == "" || p.Leader == "node-01":
			return fmt.Errorf("leader %q", p.Leader)
		}
		return nil
	})
	t.Logf("the page named %s leader %s after node-01 was killed", page.Leader, time.Since(killed).Round(time.Millisecond))

	page = b.waitPage(t, 5*time.Second, "the timeline to show the election of "+page.Leader, func(p dashPage) error {
		if !slices.Contains(p.Elected, page.Leader) {
			return fmt.Errorf("elections on the timeline: %v", p.Elected)
		}
		return nil
	})
	page = b.waitPage(t, settle, "the page to show node-01 unreachable", func(p dashPage) error {
		if p.Managers["node-01"] != "unreachable" {
			return fmt.Errorf("managers %v", p.Managers)
		}
		return nil
	})
	t.Logf("%s after the kill: managers %v, quorum %q, problems %q", time.Since(killed).Round(time.Millisecond),
		page.Managers, page.Quorum, page.Problems)

	// A worker serves a page too, one that says it is no manager.
	b.do(t, chromedp.Navigate("http://"+c.node(4).Host.IP+":8080/"))
	b.waitPage(t, settle, "node-04's page to say it is no manager", func(p dashPage) error {
		if !slices.ContainsFunc(p.Problems, func(s string) bool { return strings.Contains(s, "This node is not a swarm manager") }) {
			return fmt.Errorf("problems shown: %q", p.Problems)
		}
		return nil
	})
}

// dashPage is what the test reads off the page, through its data-*
// attributes.
type dashPage struct {
	Marker     string            `json:"marker"`
	Connection string            `json:"connection"`
	Leader     string            `json:"leader"`
	Managers   map[string]string `json:"managers"` // node: Leader, Follower, ..., or unreachable
	Nodes      int               `json:"nodes"`
	Running    int               `json:"running"`
	Elected    []string          `json:"elected"` // leaders of the elections on the timeline
	Quorum     string            `json:"quorum"`
	Problems   []string          `json:"problems"`
}

const readPage = `(() => {
  const q = s => document.querySelector(s), all = s => [...document.querySelectorAll(s)];
  const managers = {};
  for (const r of all("#managers tbody tr[data-node]")) {
    managers[r.dataset.node] = r.dataset.reachable === "true" ? r.dataset.state : "unreachable";
  }
  return {
    marker: String(window.shoalTestMarker || ""),
    connection: q("#connection").dataset.connection,
    leader: q("#managers").dataset.leader,
    managers,
    nodes: all("#nodes .noderow[data-node]:not([data-node=''])").length,
    running: all("#nodes .task[data-state='running']").length,
    elected: all("#timeline li[data-type='raft'][data-action='elect']").map(li => li.dataset.leader),
    quorum: q("#quorum").textContent,
    problems: all("#problems p").map(p => p.textContent),
  };
})()`

// browser is a headless Chromium with one tab.
type browser struct {
	ctx context.Context
}

// startBrowser starts Chromium with a fresh profile, quiet on the network
// (without these flags it keeps calling home on this machine's closed
// network), and registers its end and the profile's removal with t.Cleanup.
func startBrowser(t *testing.T) *browser {
	t.Helper()
	dir, err := os.MkdirTemp("", "shoal-chromium-")
	if err != nil {
		t.Fatal(err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(dir),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("no-proxy-server", true),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // kills the browser and waits for it
		if err := os.RemoveAll(dir); err != nil {
			t.Errorf("removing the browser profile: %v", err)
		}
	})
	// The first call starts the browser, which lives as long as that
	// call's context: no timeout on it, so the bound is here.
	start := time.Now()
	started := make(chan error, 1)
	go func() { started <- chromedp.Do(ctx) }()
	select {
	case err := <-started:
		if err != nil {
			t.Fatalf("starting %s: %v", chromiumPath, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("%s did not start within 30s", chromiumPath)
	}
	t.Logf("chromium up in %s", time.Since(start).Round(time.Millisecond))
	return &browser{ctx: ctx}
}

// do runs actions in the tab, bounded in time.
func (b *browser) do(t *testing.T, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("chromium: %v", err)
	}
}

// waitPage reads the page until ok accepts it, and returns it.
func (b *browser) waitPage(t *testing.T, timeout time.Duration, what string, ok func(dashPage) error) dashPage {
	t.Helper()
	var p dashPage
	clustertest.WaitFor(t, timeout, what, func() error {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		defer cancel()
		var err error
		if p, err = chromedp.Run(ctx, chromedp.Evaluate[dashPage](readPage)); err != nil {
			return err
		}
		return ok(p)
	})
	return p
}

// requireChromium skips the test without Chromium, or fails it when CI=true,
// as testhost.Require does for its tools.
func requireChromium(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath(chromiumPath); err == nil {
		return
	}
	testhost.SkipOrFail(t, fmt.Sprintf("the dashboard test needs %s (Debian's chromium; `make deps` installs it)", chromiumPath))
}
