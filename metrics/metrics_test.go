package metrics

import (
	"context"
	"io"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/patinadb/patina"
)

func TestHandler_ExposesQueuesLagAndCounters(t *testing.T) {
	var a patina.ActorID
	a[0] = 0xab
	c := &Collector{
		Status: func(context.Context) patina.NodeStatus {
			return patina.NodeStatus{
				Queues:        map[string]patina.QueueStatus{"apply": {Len: 3, Cap: 20000, Dropped: 7}},
				GapVersions:   5,
				LagP99Seconds: 0.25,
				Members:       []patina.Member{{State: patina.MemberAlive}, {State: patina.MemberAlive}, {State: patina.MemberDead}},
				Heads:         map[patina.ActorID]patina.Version{a: 42},
			}
		},
		Counters: func() map[string]uint64 { return map[string]uint64{"broadcast_bytes_sent": 1234} },
	}
	srv := httptest.NewServer(Handler(c))
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`patina_queue_length{queue="apply"} 3`,
		`patina_queue_capacity{queue="apply"} 20000`,
		`patina_queue_dropped_total{queue="apply"} 7`,
		`patina_sync_gap_versions 5`,
		`patina_commit_lag_p99_seconds 0.25`,
		`patina_members{state="alive"} 2`,
		`patina_members{state="dead"} 1`,
		`patina_actor_head_version{actor="ab000000000000000000000000000000"} 42`,
		`patina_broadcast_bytes_sent_total 1234`,
		`go_goroutines`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}
