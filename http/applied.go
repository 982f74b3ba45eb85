package http

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/patinadb/patina"
)

// DefaultWaitTimeout bounds ?wait= when the request gives no ?timeout.
const DefaultWaitTimeout = 10 * time.Second

// appliedBody is GET /v1/applied/{actor}/{version}.
type appliedBody struct {
	Applied bool `json:"applied"`
}

// handleApplied serves GET /v1/applied/{actor}/{version}: whether this node
// has applied that version, for peers waiting on ?wait=.
func (s *Server) handleApplied(w http.ResponseWriter, r *http.Request) {
	actor, err := patina.ParseActorID(r.PathValue("actor"))
	if err != nil {
		s.writeError(w, r, patina.Errorf(patina.EINVALID, "%v", err))
		return
	}
	v, err := strconv.ParseUint(r.PathValue("version"), 10, 64)
	if err != nil {
		s.writeError(w, r, patina.Errorf(patina.EINVALID, "version %q is not a positive integer", r.PathValue("version")))
		return
	}
	writeJSON(w, http.StatusOK, appliedBody{Applied: s.Waiter.HasApplied(actor, v)})
}

var _ patina.AppliedChecker = (*AppliedChecker)(nil)

// AppliedChecker asks a member's API (GET /v1/applied/...) whether it has
// applied a version; the agent's ?wait= uses it.
type AppliedChecker struct {
	// Token is sent as the bearer token (the cluster's API token).
	Token string
	// HTTP does the requests. nil means a client with a 2 s timeout.
	HTTP *http.Client
}

// HasApplied implements patina.AppliedChecker.
func (c *AppliedChecker) HasApplied(ctx context.Context, m patina.Member, actor patina.ActorID, v patina.Version) (bool, error) {
	if m.APIAddr == "" {
		return false, fmt.Errorf("member %s (%s) publishes no API address", m.Name, m.Addr)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 2 * time.Second}
	}
	cl := &Client{BaseURL: m.APIAddr, Token: c.Token, HTTP: hc}
	var body appliedBody
	if err := cl.getJSON(ctx, fmt.Sprintf("/v1/applied/%s/%d", actor, v), &body); err != nil {
		return false, err
	}
	return body.Applied, nil
}
