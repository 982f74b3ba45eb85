package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/patinadb/patina"
	phttp "github.com/patinadb/patina/http"
)

// freePort returns a loopback port free for both TCP and UDP right now.
func freePort(t *testing.T) int {
	t.Helper()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		u, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		l.Close()
		if err == nil {
			u.Close()
			return port
		}
	}
}

type proc struct {
	cmd              *exec.Cmd
	api, gossip, dir string
	boot             []string
	log              *os.File
}

func buildPatina(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "patina")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func (p *proc) start(t *testing.T, bin string) {
	t.Helper()
	args := []string{"agent", "--api-addr", p.api, "--gossip-addr", p.gossip, "--db-path", filepath.Join(p.dir, "state.db"), "--region", "local"}
	if len(p.boot) > 0 {
		args = append(args, "--bootstrap", strings.Join(p.boot, ","))
	}
	p.cmd = exec.Command(bin, args...)
	var err error
	p.log, err = os.OpenFile(filepath.Join(p.dir, "agent.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
}

// startAgents starts n `patina agent` processes on loopback, all joining the
// first; they get SIGTERM at the end of the test.
func startAgents(t *testing.T, bin string, n int) []*proc {
	t.Helper()
	procs := make([]*proc, n)
	for i := range procs {
		procs[i] = &proc{api: fmt.Sprintf("127.0.0.1:%d", freePort(t)), gossip: fmt.Sprintf("127.0.0.1:%d", freePort(t)), dir: t.TempDir()}
		if i > 0 {
			procs[i].boot = []string{procs[0].gossip}
		}
		procs[i].start(t, bin)
	}
	t.Cleanup(func() {
		for _, p := range procs {
			if p.cmd.Process != nil {
				p.cmd.Process.Signal(syscall.SIGTERM)
				p.cmd.Wait()
			}
		}
	})
	return procs
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var detail string
	for time.Now().Before(deadline) {
		var ok bool
		if ok, detail = cond(); ok {
			return
		}
		tm := time.NewTimer(50 * time.Millisecond)
		<-tm.C
	}
	t.Fatalf("timed out waiting for %s: %s", what, detail)
}

func TestAgentProcesses_ReplicateAndCatchUpAfterKill(t *testing.T) {
	bin := buildPatina(t)
	procs := startAgents(t, bin, 3)
	ctx := context.Background()
	client := func(i int) *phttp.Client { return &phttp.Client{BaseURL: procs[i].api} }
	count := func(i int, where string) (string, error) {
		_, rows, err := client(i).Query(ctx, patina.Statement{SQL: "SELECT count(*) FROM services " + where})
		if err != nil {
			return "", err
		}
		return fmt.Sprint(rows[0][0]), nil
	}
	waitFor(t, 30*time.Second, "three members", func() (bool, string) {
		ms, err := client(0).Members(ctx)
		if err != nil {
			return false, err.Error()
		}
		return len(ms) == 3, fmt.Sprintf("%d members", len(ms))
	})
	if _, err := client(0).Transact(ctx, []patina.Statement{{SQL: "INSERT INTO services (id, name, port) VALUES ('web-1', 'web', 8080)"}}); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < 3; i++ {
		waitFor(t, 10*time.Second, fmt.Sprintf("row on node %d", i), func() (bool, string) {
			c, err := count(i, "WHERE id = 'web-1'")
			return c == "1", fmt.Sprint(c, err)
		})
	}
	// SIGKILL node 2, write while it is down, restart it from its files.
	procs[2].cmd.Process.Kill()
	procs[2].cmd.Wait()
	for k := 0; k < 50; k++ {
		if _, err := client(k%2).Transact(ctx, []patina.Statement{{SQL: fmt.Sprintf("INSERT INTO services (id, port) VALUES ('s%d', %d)", k, k)}}); err != nil {
			t.Fatal(err)
		}
	}
	procs[2].start(t, bin)
	waitFor(t, 30*time.Second, "killed node catches up", func() (bool, string) {
		c, err := count(2, "")
		return c == "51", fmt.Sprint(c, err)
	})
}
