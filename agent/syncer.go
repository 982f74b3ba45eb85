package agent

import (
	"context"
	"fmt"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/antientropy"
)

// syncLoop runs anti-entropy rounds with randomized backoff, sooner when the
// node knows it is behind (a gap, a partial, or just restarted).
func (a *Agent) syncLoop() {
	defer a.wg.Done()
	rng := newRand()
	bo := &antientropy.Backoff{Min: a.SyncMinBackoff, Max: a.SyncMaxBackoff}
	behind := true // just started: catch up
	for {
		wait := bo.Next(behind, rng)
		t := time.NewTimer(wait)
		select {
		case <-a.ctx.Done():
			t.Stop()
			return
		case <-t.C:
		case <-a.syncNow:
			t.Stop()
		}
		behind = a.syncRound(rng)
	}
}

// syncRound talks to a few peers and reports whether the node is (or was)
// behind.
func (a *Agent) syncRound(rng antientropy.Rand) bool {
	peers := a.Membership.Members()
	byActor := map[patina.ActorID]patina.Member{}
	var cands []antientropy.Candidate
	local := a.Store.SyncState()
	for _, m := range peers {
		if m.State != patina.MemberAlive || m.ClusterID != a.ClusterID {
			continue
		}
		byActor[m.Actor] = m
		score := 0
		for _, r := range local.Gaps[m.Actor] {
			score += int(r.Len())
		}
		cands = append(cands, antientropy.Candidate{Actor: m.Actor, Region: m.Region, LastSync: a.lastSync[m.Actor], Score: score})
	}
	chosen := antientropy.ChoosePeers(cands, a.SyncPeers, a.Region, rng)
	if len(chosen) == 0 {
		return false
	}
	planner := antientropy.NewPlanner(local, DefaultSyncMaxVersions)
	behind := len(local.Gaps) > 0 || len(local.Partials) > 0
	for _, c := range chosen {
		if a.ctx.Err() != nil {
			return false
		}
		peer := byActor[c.Actor]
		got, err := a.syncWith(peer, planner, local)
		if err != nil {
			a.Logger.Debug("sync round with peer failed", "peer", peer.Addr, "err", err)
			continue
		}
		a.lastSync[c.Actor] = a.Now()
		if got > 0 {
			behind = true
		}
	}
	return behind
}

// syncWith fetches a peer's state, asks for what the planner assigns it, and
// applies what comes back in batches (waiting: sync is the backpressured
// path). It returns how many changesets were received.
func (a *Agent) syncWith(peer patina.Member, planner *antientropy.Planner, local patina.SyncState) (int, error) {
	ctx, cancel := context.WithTimeout(a.ctx, DefaultSyncTimeout)
	defer cancel()
	remote, err := a.Peers.SyncState(ctx, peer)
	if err != nil {
		return 0, err
	}
	a.graceHeads(peer.Actor, &remote, local)
	needs := planner.Add(peer.Actor, remote)
	if len(needs) == 0 {
		return 0, nil
	}
	var batch []patina.Changeset
	n := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		res, err := a.Store.Apply(ctx, batch)
		if err != nil {
			return err
		}
		if len(res.Outcomes) != len(batch) {
			return fmt.Errorf("apply %d changesets from sync: the store returned %d outcomes", len(batch), len(res.Outcomes))
		}
		var fresh []patina.Changeset
		for i, out := range res.Outcomes {
			switch out {
			case patina.ApplyNew:
				fresh = append(fresh, batch[i])
			case patina.ApplyRejected:
				a.quarantined.Add(1)
				a.Logger.Error("rejected changeset from sync (quarantined)", "origin", batch[i].Actor, "version", batch[i].Version,
					"table", changesetTable(&batch[i]), "peer", peer.Addr, "reason", applyError(res, i))
			}
		}
		if a.OnApplied != nil && len(fresh) > 0 {
			a.OnApplied(fresh)
		}
		batch = batch[:0]
		return nil
	}
	err = a.Peers.Pull(ctx, peer, needs, func(cs patina.Changeset) error {
		n++
		batch = append(batch, cs)
		if len(batch) >= a.ApplyBatch {
			return flush()
		}
		return nil
	})
	if ferr := flush(); err == nil {
		err = ferr
	}
	return n, err
}

// BroadcastGrace is how long versions above our head are left to broadcast
// before sync pulls them. Without it sync races the broadcast queue for
// every fresh version, and during a retry storm it would pull versions the
// queue is about to coalesce away (INCIDENTS.md #1). Gaps below our head are
// pulled at once.
const BroadcastGrace = time.Second

type headSeen struct {
	head patina.Version
	at   time.Time
}

// graceHeads lowers remote's heads to the highest head any peer showed for
// that origin at least BroadcastGrace ago (our own head when none did:
// versions that fresh are still on their way by broadcast), and records
// what this peer shows now. Observations are pooled across peers, so a
// node that syncs with a different peer every round still repairs a lost
// broadcast about BroadcastGrace after it happened.
func (a *Agent) graceHeads(peer patina.ActorID, remote *patina.SyncState, local patina.SyncState) {
	now := a.Now()
	if a.seenHeads == nil {
		a.seenHeads = map[patina.ActorID][]headSeen{}
	}
	for actor, head := range remote.Heads {
		obs := a.seenHeads[actor]
		var settled patina.Version // highest head seen at least BroadcastGrace ago
		keep := obs[:0]
		for _, o := range obs {
			if now.Sub(o.at) >= BroadcastGrace {
				settled = max(settled, o.head)
			} else {
				keep = append(keep, o)
			}
		}
		if settled > 0 {
			keep = append([]headSeen{{settled, now.Add(-BroadcastGrace)}}, keep...)
		}
		switch {
		case len(local.Heads) == 0:
			// A node with nothing (new, or wiped) takes everything now.
		case head > settled:
			remote.Heads[actor] = max(settled, min(head, local.Heads[actor]))
		}
		if len(keep) < 64 {
			keep = append(keep, headSeen{head, now})
		}
		a.seenHeads[actor] = keep
	}
}
