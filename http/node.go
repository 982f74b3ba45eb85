package http

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/patinadb/patina"
)

// applyQueue is the NodeStatus queue whose depth health reports as
// queue_size: changes received and waiting to be applied.
const applyQueue = "apply"

// healthBody is Corrosion's GET /v1/health body; Error (a patina addition)
// says which threshold failed.
type healthBody struct {
	Response healthResponse `json:"response"`
	Error    string         `json:"error,omitempty"`
}

type healthResponse struct {
	Gaps      uint64  `json:"gaps"`
	Members   int     `json:"members"`
	P99Lag    float64 `json:"p99_lag"`
	QueueSize int     `json:"queue_size"`
}

// handleHealth serves GET /v1/health?gaps=&p99_lag=&max_queue=&queue_size=&failure_status=
// with Corrosion's rules: failure_status (default 503) when gaps exceed
// ?gaps, the apply queue exceeds ?max_queue, or p99 lag exceeds ?p99_lag
// while the queue exceeds ?queue_size (when given).
func (s *Server) handleHealth(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	var (
		gaps, maxQueue, queueSize uint64
		p99Lag                    float64
		failStatus                = http.StatusServiceUnavailable
		err                       error
	)
	parseUint := func(name string, dst *uint64) bool {
		if v := q.Get(name); v != "" && err == nil {
			if *dst, err = strconv.ParseUint(v, 10, 64); err != nil {
				err = patina.Errorf(patina.EINVALID, "?%s=%s is not a non-negative integer", name, v)
			}
			return true
		}
		return false
	}
	hasGaps := parseUint("gaps", &gaps)
	hasMaxQueue := parseUint("max_queue", &maxQueue)
	hasQueueSize := parseUint("queue_size", &queueSize)
	hasLag := false
	if v := q.Get("p99_lag"); v != "" && err == nil {
		hasLag = true
		if p99Lag, err = strconv.ParseFloat(v, 64); err != nil || p99Lag < 0 || math.IsNaN(p99Lag) {
			err = patina.Errorf(patina.EINVALID, "?p99_lag=%s is not a non-negative number of seconds", v)
		}
	}
	if v := q.Get("failure_status"); v != "" && err == nil {
		if failStatus, err = strconv.Atoi(v); err != nil || failStatus < 200 || failStatus > 599 {
			err = patina.Errorf(patina.EINVALID, "?failure_status=%s is not an HTTP status (200 to 599)", v)
		}
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}

	st := s.Service.Status(r.Context())
	resp := healthResponse{
		Gaps:      st.GapVersions,
		Members:   aliveMembers(st.Members),
		P99Lag:    finite(st.LagP99Seconds),
		QueueSize: st.Queues[applyQueue].Len,
	}
	var failed []string
	if hasGaps && resp.Gaps > gaps {
		failed = append(failed, fmt.Sprintf("%d versions missing in gaps, more than ?gaps=%d", resp.Gaps, gaps))
	}
	if hasMaxQueue && uint64(resp.QueueSize) > maxQueue {
		failed = append(failed, fmt.Sprintf("%d changes waiting in the apply queue, more than ?max_queue=%d", resp.QueueSize, maxQueue))
	}
	if hasLag && resp.P99Lag > p99Lag && (!hasQueueSize || uint64(resp.QueueSize) > queueSize) {
		failed = append(failed, fmt.Sprintf("p99 replication lag %.3gs, more than ?p99_lag=%g", resp.P99Lag, p99Lag))
	}
	if len(failed) > 0 {
		writeJSON(w, failStatus, healthBody{Response: resp, Error: "unhealthy: " + strings.Join(failed, "; ")})
		return
	}
	writeJSON(w, http.StatusOK, healthBody{Response: resp})
}

func aliveMembers(ms []patina.Member) int {
	n := 0
	for _, m := range ms {
		if m.State == patina.MemberAlive {
			n++
		}
	}
	return n
}

func finite(f float64) float64 {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return 0
	}
	return f
}

// handleMembers serves GET /v1/members: the cluster's members as JSON.
func (s *Server) handleMembers(w http.ResponseWriter, r *http.Request) {
	st := s.Service.Status(r.Context())
	writeJSON(w, http.StatusOK, membersJSON(st.Members))
}

// handleStatus serves GET /v1/status: the node's NodeStatus as JSON.
func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	st := s.Service.Status(r.Context())
	writeJSON(w, http.StatusOK, statusToJSON(st))
}

// memberJSON is one member in GET /v1/members and /v1/status.
type memberJSON struct {
	ActorID   string `json:"actor_id"`
	Name      string `json:"name"`
	Addr      string `json:"addr"`
	APIAddr   string `json:"api_addr"`
	Region    string `json:"region"`
	ClusterID uint16 `json:"cluster_id"`
	Protocol  uint16 `json:"protocol"`
	State     string `json:"state"`
}

func membersJSON(ms []patina.Member) []memberJSON {
	out := make([]memberJSON, len(ms))
	for i, m := range ms {
		out[i] = memberJSON{
			ActorID:   m.Actor.String(),
			Name:      m.Name,
			Addr:      m.Addr,
			APIAddr:   m.APIAddr,
			Region:    m.Region,
			ClusterID: m.ClusterID,
			Protocol:  m.Protocol,
			State:     m.State.String(),
		}
	}
	return out
}

func (m memberJSON) member() (patina.Member, error) {
	actor, err := patina.ParseActorID(m.ActorID)
	if err != nil {
		return patina.Member{}, fmt.Errorf("member %q: %w", m.Name, err)
	}
	state, err := parseMemberState(m.State)
	if err != nil {
		return patina.Member{}, fmt.Errorf("member %q: %w", m.Name, err)
	}
	return patina.Member{
		Actor:     actor,
		Name:      m.Name,
		Addr:      m.Addr,
		APIAddr:   m.APIAddr,
		Region:    m.Region,
		ClusterID: m.ClusterID,
		Protocol:  m.Protocol,
		State:     state,
	}, nil
}

func parseMemberState(s string) (patina.MemberState, error) {
	for st := patina.MemberAlive; st <= patina.MemberLeft; st++ {
		if st.String() == s {
			return st, nil
		}
	}
	return 0, fmt.Errorf("unknown member state %q", s)
}

// statusJSON is GET /v1/status: patina.NodeStatus with actor ids in hex.
type statusJSON struct {
	ActorID       string               `json:"actor_id"`
	Region        string               `json:"region"`
	ClusterID     uint16               `json:"cluster_id"`
	Members       []memberJSON         `json:"members"`
	Heads         map[string]uint64    `json:"heads"`
	GapVersions   uint64               `json:"gap_versions"`
	Partials      int                  `json:"partials"`
	Queues        map[string]queueJSON `json:"queues"`
	Deferred      int                  `json:"deferred"`
	Quarantined   int                  `json:"quarantined"`
	LagP99Seconds float64              `json:"lag_p99_seconds"`
}

type queueJSON struct {
	Len     int    `json:"len"`
	Cap     int    `json:"cap"`
	Dropped uint64 `json:"dropped"`
}

func statusToJSON(st patina.NodeStatus) statusJSON {
	out := statusJSON{
		ActorID:       st.Actor.String(),
		Region:        st.Region,
		ClusterID:     st.ClusterID,
		Members:       membersJSON(st.Members),
		Heads:         make(map[string]uint64, len(st.Heads)),
		GapVersions:   st.GapVersions,
		Partials:      st.Partials,
		Queues:        make(map[string]queueJSON, len(st.Queues)),
		Deferred:      st.Deferred,
		Quarantined:   st.Quarantined,
		LagP99Seconds: finite(st.LagP99Seconds),
	}
	for a, v := range st.Heads {
		out.Heads[a.String()] = v
	}
	for name, q := range st.Queues {
		out.Queues[name] = queueJSON{Len: q.Len, Cap: q.Cap, Dropped: q.Dropped}
	}
	return out
}

func (sj statusJSON) status() (patina.NodeStatus, error) {
	actor, err := patina.ParseActorID(sj.ActorID)
	if err != nil {
		return patina.NodeStatus{}, err
	}
	st := patina.NodeStatus{
		Actor:         actor,
		Region:        sj.Region,
		ClusterID:     sj.ClusterID,
		GapVersions:   sj.GapVersions,
		Partials:      sj.Partials,
		Deferred:      sj.Deferred,
		Quarantined:   sj.Quarantined,
		LagP99Seconds: sj.LagP99Seconds,
	}
	for _, mj := range sj.Members {
		m, err := mj.member()
		if err != nil {
			return patina.NodeStatus{}, err
		}
		st.Members = append(st.Members, m)
	}
	if sj.Heads != nil {
		st.Heads = make(map[patina.ActorID]patina.Version, len(sj.Heads))
		for hex, v := range sj.Heads {
			a, err := patina.ParseActorID(hex)
			if err != nil {
				return patina.NodeStatus{}, fmt.Errorf("heads: %w", err)
			}
			st.Heads[a] = v
		}
	}
	if sj.Queues != nil {
		st.Queues = make(map[string]patina.QueueStatus, len(sj.Queues))
		for name, q := range sj.Queues {
			st.Queues[name] = patina.QueueStatus{Len: q.Len, Cap: q.Cap, Dropped: q.Dropped}
		}
	}
	return st, nil
}
