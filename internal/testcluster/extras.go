package testcluster

import (
	"context"
	"fmt"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/agent"
	phttp "github.com/patinadb/patina/http"
	"github.com/patinadb/patina/pubsub"
)

// startExtras wires what sits beside the agent: the read-your-writes
// waiter, and when configured the subscription service and the HTTP API.
// It runs before gossip opens, so members learn the API address.
func (c *Cluster) startExtras(n *Node) error {
	n.Waiter = &agent.Waiter{Agent: n.Agent, Checker: checker{c}}
	n.PubSub = nil
	if c.cfg.Subscriptions {
		ps := pubsub.New(n.Path)
		ps.Logger = n.Agent.Logger
		if c.cfg.TunePubSub != nil {
			c.cfg.TunePubSub(n.Index, ps)
		}
		if err := ps.Open(); err != nil {
			return fmt.Errorf("node %d: open subscriptions: %w", n.Index, err)
		}
		n.PubSub = ps
		n.Agent.OnApplied = ps.Notify
	}
	if c.cfg.API {
		api := phttp.NewServer(n.Agent)
		api.Addr = "127.0.0.1:0"
		if n.API != nil {
			api.Addr = n.API.BoundAddr() // a restart keeps the address
		}
		api.Logger = n.Agent.Logger
		api.Waiter = n.Waiter
		if n.PubSub != nil {
			api.Subscriptions = n.PubSub
		}
		if err := api.Open(); err != nil {
			if n.PubSub != nil {
				n.PubSub.Close()
			}
			return fmt.Errorf("node %d: open api: %w", n.Index, err)
		}
		n.API = api
		n.Gossip.APIAddr = api.BoundAddr()
	}
	return nil
}

func (c *Cluster) stopExtras(n *Node) {
	if n.API != nil {
		n.API.Close() // BoundAddr stays readable for the restart
	}
	if n.PubSub != nil {
		n.PubSub.Close()
	}
}

// checker answers "has member m applied actor's version v" by asking the
// node in process. A partitioned node answers from its own state, which
// lacks what the partition kept from it.
type checker struct{ c *Cluster }

func (k checker) HasApplied(ctx context.Context, m patina.Member, actor patina.ActorID, v patina.Version) (bool, error) {
	for _, n := range k.c.Nodes {
		if n.up && n.Store.Actor() == m.Actor {
			return n.Waiter.HasApplied(actor, v), nil
		}
	}
	return false, fmt.Errorf("node %s is down", m.Name)
}
