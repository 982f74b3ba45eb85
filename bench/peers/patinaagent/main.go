// Command patinaagent is `patina agent` with one more flag, --advertise-addr:
// the gossip address peers are told, when it differs from the bound one. The
// WAN benchmark (bench/peers) needs it: each agent binds its real loopback
// IP and advertises the bench/wan proxy in front of it. cmd/patina has no
// advertise option yet, so this copies its wiring (cmd/patina/node.go,
// startNode, with the default config) and changes only the network's
// advertised address. Everything else — store, agent, gossip, HTTP API,
// memberlist timings, broadcast — is the same packages with the same defaults.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/agent"
	"github.com/patinadb/patina/gossip"
	phttp "github.com/patinadb/patina/http"
	"github.com/patinadb/patina/internal/defaultschema"
	"github.com/patinadb/patina/sqlite"
)

func main() {
	apiAddr := flag.String("api-addr", "127.0.0.1:8080", "HTTP API address")
	gossipAddr := flag.String("gossip-addr", "127.0.0.1:8787", "gossip address to bind (UDP+TCP)")
	advertise := flag.String("advertise-addr", "", "gossip address peers are told (default: --gossip-addr)")
	dbPath := flag.String("db-path", "./patina-data/state.db", "SQLite file")
	bootstrap := flag.String("bootstrap", "", "peers to join, comma-separated host:port")
	region := flag.String("region", "local", "the node's region")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	var boot []string
	if *bootstrap != "" {
		boot = strings.Split(*bootstrap, ",")
	}
	if err := run(ctx, log, *apiAddr, *gossipAddr, *advertise, *dbPath, *region, boot); err != nil {
		fmt.Fprintln(os.Stderr, "patinaagent:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, apiAddr, gossipAddr, advertise, dbPath, region string, boot []string) error {
	if err := os.MkdirAll(filepath.Dir(dbPath), 0o755); err != nil {
		return err
	}
	store := sqlite.NewDB(dbPath)
	if err := store.Open(); err != nil {
		return err
	}
	defer store.Close()
	if err := store.ApplySchema([]sqlite.SchemaFile{{Name: defaultschema.Name, SQL: defaultschema.SQL}}); err != nil {
		return fmt.Errorf("apply schema: %w", err)
	}
	a := agent.New(store)
	a.Region, a.Logger = region, log
	api := phttp.NewServer(a)
	api.Addr, api.Logger = apiAddr, log
	if err := api.Open(); err != nil {
		return fmt.Errorf("start API on %s: %w", apiAddr, err)
	}
	defer api.Close()
	var network gossip.Network = &gossip.TCPNetwork{BindAddr: gossipAddr}
	if advertise != "" && advertise != gossipAddr {
		network = &advertised{TCPNetwork: gossip.TCPNetwork{BindAddr: gossipAddr}, advertise: advertise}
	}
	g := &gossip.Node{
		Actor: store.Actor(), Region: region, APIAddr: api.BoundAddr(),
		Network: network, Bootstrap: boot, Handler: a, SyncServer: store, Logger: log,
	}
	a.Membership, a.Broadcaster, a.Peers = g, g, g
	a.ExtraQueues = func() map[string]patina.QueueStatus {
		return map[string]patina.QueueStatus{"broadcast": g.QueueStatus()}
	}
	if err := g.Open(ctx); err != nil {
		return fmt.Errorf("start gossip on %s: %w", gossipAddr, err)
	}
	if err := a.Open(ctx); err != nil {
		g.Close()
		return err
	}
	log.Info("patina agent running", "actor", store.Actor(), "region", region, "api", api.BoundAddr(), "gossip", gossipAddr, "advertise", network.Addr())
	<-ctx.Done()
	return errors.Join(api.Close(), g.Close(), a.Close())
}

// advertised is the real TCP network bound on one address and advertised
// as another: Addr (what memberlist and peers see) is the advertised one;
// the sockets bind the real one.
type advertised struct {
	gossip.TCPNetwork
	advertise string
}

func (n *advertised) Addr() string { return n.advertise }

func (n *advertised) ListenPacket() (net.PacketConn, error) {
	pc, err := net.ListenPacket("udp", n.TCPNetwork.Addr())
	if err != nil {
		return nil, fmt.Errorf("listen on gossip address %s (udp): %w", n.TCPNetwork.Addr(), err)
	}
	return &udpConn{PacketConn: pc}, nil
}

// udpConn resolves string addresses handed to WriteTo (as gossip's does).
type udpConn struct{ net.PacketConn }

func (c *udpConn) WriteTo(b []byte, addr net.Addr) (int, error) {
	if _, ok := addr.(*net.UDPAddr); !ok {
		ua, err := net.ResolveUDPAddr("udp", addr.String())
		if err != nil {
			return 0, err
		}
		addr = ua
	}
	return c.PacketConn.WriteTo(b, addr)
}
