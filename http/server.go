package http

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/patinadb/patina"
)

// Defaults for Server's config fields.
const (
	DefaultMaxBodyBytes  = 4 << 20
	DefaultQueryTimeout  = 60 * time.Second
	DefaultMaxConcurrent = 128
	// shutdownGrace is how long Close waits for in-flight requests.
	shutdownGrace = 5 * time.Second
)

// Log keys.
const (
	logKeyMethod = "method"
	logKeyPath   = "path"
	logKeyStatus = "status"
	logKeyErr    = "err"
	logKeyAddr   = "addr"
)

// Service is what the API serves; the agent implements it.
type Service interface {
	// Transact runs stmts atomically as one local transaction.
	Transact(ctx context.Context, stmts []patina.Statement) (*patina.TxResult, error)
	// Query runs one read-only statement; the caller closes the rows.
	Query(ctx context.Context, stmt patina.Statement) (patina.Rows, error)
	// Status reports the node's state for health, members and status.
	Status(ctx context.Context) patina.NodeStatus
	// Actor returns the node's actor id.
	Actor() patina.ActorID
}

// Server is the agent's client API: Corrosion's HTTP routes and shapes.
type Server struct {
	// Addr is the listen address, host:port; port 0 picks a free port
	// (see BoundAddr).
	Addr string
	// Service answers the requests. Required.
	Service Service
	// BearerToken, when set, is required on every request as
	// `Authorization: Bearer <token>`. "" means no authentication.
	BearerToken string
	// MaxBodyBytes bounds a request body, in bytes. Default
	// DefaultMaxBodyBytes (4 MiB); must be positive.
	MaxBodyBytes int64
	// QueryTimeout bounds each transaction and query unless the request
	// gives ?timeout=SECONDS. Default DefaultQueryTimeout (60 s); 0 means no
	// limit, as does ?timeout=0.
	QueryTimeout time.Duration
	// MaxConcurrent bounds the requests in flight on each route; more are
	// refused at once with 503 and Retry-After, never queued. Default
	// DefaultMaxConcurrent (128); must be positive.
	MaxConcurrent int
	// Logger receives request failures. nil discards.
	Logger *slog.Logger
	// Subscriptions, when set, serves /v1/subscriptions and /v1/updates
	// (see subscriptions.go). nil leaves those routes out.
	Subscriptions patina.SubscriptionService
	// Waiter, when set, serves ?wait= on transactions and
	// GET /v1/applied/{actor}/{version} for peers. nil refuses ?wait=.
	Waiter patina.ApplyWaiter
	// Extra, when set, mounts more routes (subscriptions, metrics, ...) on
	// the mux before the catch-all 404. Authentication and the body limit
	// apply to them; "/" is taken.
	Extra func(mux *http.ServeMux)
	// Now reads the clock for the reported "time" fields. Default time.Now.
	Now func() time.Time

	handlerOnce sync.Once
	handler     http.Handler

	mu   sync.Mutex
	ln   net.Listener
	srv  *http.Server
	done chan struct{}
	// closing is closed when Close starts, ending long streams at once
	// instead of letting them hold shutdown for its whole grace period.
	closing chan struct{}
}

// NewServer returns a Server for svc with default config. It does not listen
// until Open.
func NewServer(svc Service) *Server {
	return &Server{
		Service:       svc,
		MaxBodyBytes:  DefaultMaxBodyBytes,
		QueryTimeout:  DefaultQueryTimeout,
		MaxConcurrent: DefaultMaxConcurrent,
		Logger:        slog.Default(),
		Now:           time.Now,
	}
}

// Validate checks the config.
func (s *Server) Validate() error {
	switch {
	case s.Service == nil:
		return errors.New("http server: Service is nil")
	case s.MaxBodyBytes <= 0:
		return fmt.Errorf("http server: MaxBodyBytes is %d, want a positive number of bytes", s.MaxBodyBytes)
	case s.QueryTimeout < 0:
		return fmt.Errorf("http server: QueryTimeout is %v, want 0 (no limit) or more", s.QueryTimeout)
	case s.MaxConcurrent <= 0:
		return fmt.Errorf("http server: MaxConcurrent is %d, want a positive number of requests", s.MaxConcurrent)
	}
	return nil
}

// Open validates the config, listens on Addr and serves in the background.
func (s *Server) Open() error {
	if err := s.Validate(); err != nil {
		return err
	}
	h := s.Handler()
	ln, err := net.Listen("tcp", s.Addr)
	if err != nil {
		return fmt.Errorf("listen on api address %q: %w", s.Addr, err)
	}
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.logger().Handler(), slog.LevelWarn),
	}
	s.mu.Lock()
	s.ln, s.srv, s.done = ln, srv, make(chan struct{})
	done := s.done
	s.mu.Unlock()
	go func() {
		defer close(done)
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.logger().Error("api server stopped", logKeyAddr, ln.Addr().String(), logKeyErr, err)
		}
	}()
	return nil
}

// BoundAddr returns the address the server listens on once open (with the
// real port when Addr asked for port 0), or "" before Open.
func (s *Server) BoundAddr() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln == nil {
		return ""
	}
	return s.ln.Addr().String()
}

// URL returns "http://" + BoundAddr().
func (s *Server) URL() string { return "http://" + s.BoundAddr() }

// Close stops listening and waits a few seconds for requests in flight,
// then cuts the rest (long queries and streams).
func (s *Server) Close() error {
	s.mu.Lock()
	srv, done := s.srv, s.done
	s.srv = nil
	if srv != nil && s.closing != nil {
		close(s.closing)
		s.closing = nil
	}
	s.mu.Unlock()
	if srv == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		err = srv.Close()
	}
	<-done
	if err != nil {
		return fmt.Errorf("close api server: %w", err)
	}
	return nil
}

// route is one built-in endpoint.
type route struct {
	method, path string
	handle       http.HandlerFunc
}

func (s *Server) routes() []route {
	return []route{
		{http.MethodPost, "/v1/transactions", s.handleTransactions},
		{http.MethodPost, "/v1/queries", s.handleQueries},
		{http.MethodGet, "/v1/health", s.handleHealth},
		{http.MethodGet, "/v1/members", s.handleMembers},
		{http.MethodGet, "/v1/status", s.handleStatus},
	}
}

// Handler returns the server's handler, built once from the config (for
// tests with httptest). It panics if the config is invalid; Open returns
// the error instead.
func (s *Server) Handler() http.Handler {
	s.handlerOnce.Do(func() {
		if err := s.Validate(); err != nil {
			panic(err)
		}
		mux := http.NewServeMux()
		var names []string
		for _, rt := range s.routes() {
			mux.Handle(rt.path, s.limit(rt))
			names = append(names, rt.method+" "+rt.path)
		}
		if s.Subscriptions != nil {
			names = append(names, s.mountSubscriptions(mux)...)
		}
		if s.Waiter != nil {
			mux.HandleFunc("GET /v1/applied/{actor}/{version}", s.handleApplied)
			names = append(names, "GET /v1/applied/{actor}/{version}")
		}
		sort.Strings(names)
		if s.Extra != nil {
			s.Extra(mux)
		}
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			s.writeError(w, r, patina.Errorf(patina.ENOTFOUND, "no route %s %s; the API serves %s", r.Method, r.URL.Path, strings.Join(names, ", ")))
		})
		s.handler = s.authenticate(mux)
	})
	return s.handler
}

// authenticate checks the bearer token and bounds the body of every request.
func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if s.BearerToken != "" {
			auth := r.Header.Get("Authorization")
			token, ok := strings.CutPrefix(auth, "Bearer ")
			switch {
			case auth == "":
				s.writeError(w, r, patina.Errorf(patina.EUNAUTHORIZED, "this API requires a bearer token: send the header `Authorization: Bearer <token>` with the agent's configured api token"))
				return
			case !ok:
				s.writeError(w, r, patina.Errorf(patina.EUNAUTHORIZED, "the Authorization header must read `Bearer <token>`"))
				return
			case subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(s.BearerToken)) != 1:
				s.writeError(w, r, patina.Errorf(patina.EUNAUTHORIZED, "wrong bearer token; check the agent's configured api token"))
				return
			}
		}
		if r.ContentLength > s.MaxBodyBytes {
			s.writeError(w, r, s.tooLarge())
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

func (s *Server) tooLarge() error {
	return patina.Errorf(patina.ETOOLARGE, "request body is larger than the %s limit (%d bytes); split the work into smaller requests or raise the agent's api max body size", formatBytes(s.MaxBodyBytes), s.MaxBodyBytes)
}

// limit checks the method and sheds load beyond MaxConcurrent requests in
// flight on the route.
func (s *Server) limit(rt route) http.Handler {
	sem := make(chan struct{}, s.MaxConcurrent)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != rt.method {
			w.Header().Set("Allow", rt.method)
			writeJSON(w, http.StatusMethodNotAllowed, errorBody{Error: fmt.Sprintf("method %s is not allowed on %s; use %s", r.Method, rt.path, rt.method)})
			return
		}
		select {
		case sem <- struct{}{}:
		default:
			s.writeError(w, r, patina.Errorf(patina.EUNAVAILABLE, "%s %s already has %d requests in flight, its limit; retry in %ds", rt.method, rt.path, s.MaxConcurrent, retryAfterSeconds))
			return
		}
		defer func() { <-sem }()
		rt.handle(w, r)
	})
}

// readRequest reads a statement request's ?timeout= and its bounded body.
func (s *Server) readRequest(r *http.Request) (time.Duration, []byte, error) {
	timeout, err := s.requestTimeout(r)
	if err != nil {
		return 0, nil, err
	}
	body, err := s.readBody(r)
	return timeout, body, err
}

// readBody reads the bounded request body.
func (s *Server) readBody(r *http.Request) ([]byte, error) {
	data, err := io.ReadAll(r.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, s.tooLarge()
		}
		return nil, patina.Errorf(patina.EINVALID, "read request body: %v", err)
	}
	return data, nil
}

// requestTimeout returns ?timeout=SECONDS (or a duration like 5s), or
// QueryTimeout when absent.
func (s *Server) requestTimeout(r *http.Request) (time.Duration, error) {
	v := r.URL.Query().Get("timeout")
	if v == "" {
		return s.QueryTimeout, nil
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil {
		// Also a Go duration, e.g. ?timeout=5s or 500ms.
		if d, derr := time.ParseDuration(v); derr == nil {
			secs, err = d.Seconds(), nil
		}
	}
	if err != nil || secs < 0 || secs > 1e9 || secs != secs {
		return 0, patina.Errorf(patina.EINVALID, "?timeout=%s is not a number of seconds; use e.g. ?timeout=30 or ?timeout=5s, or ?timeout=0 for no limit", v)
	}
	return time.Duration(secs * float64(time.Second)), nil
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) logger() *slog.Logger {
	if s.Logger != nil {
		return s.Logger
	}
	return slog.New(slog.DiscardHandler)
}
