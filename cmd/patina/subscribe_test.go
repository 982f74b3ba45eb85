package main

import (
	"bufio"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/client"
	phttp "github.com/patinadb/patina/http"
)

// TestSubscribeCommand runs real agents and `patina subscribe --json`: the
// CLI prints the snapshot and every change, keeps going across a SIGKILL
// and restart of its agent, and `patina subs list` shows the subscription.
// Writes wait for replication with ?wait=all.
func TestSubscribeCommand(t *testing.T) {
	bin := buildPatina(t)
	procs := startAgents(t, bin, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	writer := client.New(procs[0].api)
	waitFor(t, 30*time.Second, "two members and node 1's API", func() (bool, string) {
		ms, err := (&phttp.Client{BaseURL: procs[0].api}).Members(ctx)
		if err != nil || len(ms) != 2 {
			return false, fmt.Sprint(ms, err)
		}
		_, err = client.New(procs[1].api).Subscriptions(ctx)
		return err == nil, fmt.Sprint(err)
	})
	exec1 := func(sql string) {
		t.Helper()
		if _, err := writer.Transact(ctx, []patina.Statement{{SQL: sql}}, client.Wait("all"), client.Timeout(10*time.Second)); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
	exec1("INSERT INTO services (id, name, port) VALUES ('web-1', 'web', 8080)")

	sub := exec.CommandContext(ctx, bin, "subscribe", "--api-addr", procs[1].api, "--json", "SELECT id, port FROM services WHERE name = 'web'")
	stdout, err := sub.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sub.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sub.Process.Kill(); sub.Wait() })
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	expect := func(want string) {
		t.Helper()
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("patina subscribe exited; want %s", want)
			}
			if !strings.HasPrefix(l, want) {
				t.Fatalf("patina subscribe printed %s, want %s...", l, want)
			}
		case <-ctx.Done():
			t.Fatalf("no line; want %s", want)
		}
	}
	expect(`{"columns":["id","port"]}`)
	expect(`{"row":[1,["web-1",8080]]}`)
	expect(`{"eoq":{"time":`)
	exec1("UPDATE services SET port = 9090 WHERE id = 'web-1'")
	expect(`{"change":["update",1,["web-1",9090],1]}`)

	out, err := exec.Command(bin, "subs", "list", "--api-addr", procs[1].api).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "SELECT id, port FROM services WHERE name = 'web'") || !strings.Contains(string(out), "primary-key") {
		t.Fatalf("patina subs list: %v\n%s", err, out)
	}

	// The subscriber's agent dies; a write lands meanwhile; it restarts.
	procs[1].cmd.Process.Kill()
	procs[1].cmd.Wait()
	if _, err := writer.Transact(ctx, []patina.Statement{{SQL: "INSERT INTO services (id, name, port) VALUES ('web-2', 'web', 8081)"}}); err != nil {
		t.Fatal(err)
	}
	procs[1].start(t, bin)
	expect(`{"change":["insert",2,["web-2",8081],2]}`)
}
