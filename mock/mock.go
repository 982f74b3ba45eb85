// Package mock has func-field mocks of patina's root interfaces, for unit
// tests that inject faults through those seams. A method whose func field is
// nil panics, so a test states every call it expects.
package mock

import (
	"context"

	"github.com/patinadb/patina"
)

var (
	_ patina.Store       = (*Store)(nil)
	_ patina.Membership  = (*Membership)(nil)
	_ patina.Broadcaster = (*Broadcaster)(nil)
	_ patina.PeerClient  = (*PeerClient)(nil)
	_ patina.SyncServer  = (*SyncServer)(nil)
)

// Store is a patina.Store.
type Store struct {
	ActorFunc             func() patina.ActorID
	TransactFunc          func(ctx context.Context, stmts []patina.Statement) (*patina.TxResult, error)
	QueryFunc             func(ctx context.Context, stmt patina.Statement) (patina.Rows, error)
	ApplyFunc             func(ctx context.Context, css []patina.Changeset) (patina.ApplyResult, error)
	ChangesForFunc        func(ctx context.Context, actor patina.ActorID, r patina.Range, maxBytes int, fn func(patina.Changeset) error) error
	PartialChangesForFunc func(ctx context.Context, actor patina.ActorID, v patina.Version, seqs []patina.Range, maxBytes int, fn func(patina.Changeset) error) error
	SyncStateFunc         func() patina.SyncState
	CloseFunc             func() error
}

func (s *Store) Actor() patina.ActorID { return s.ActorFunc() }
func (s *Store) Transact(ctx context.Context, stmts []patina.Statement) (*patina.TxResult, error) {
	return s.TransactFunc(ctx, stmts)
}
func (s *Store) Query(ctx context.Context, stmt patina.Statement) (patina.Rows, error) {
	return s.QueryFunc(ctx, stmt)
}
func (s *Store) Apply(ctx context.Context, css []patina.Changeset) (patina.ApplyResult, error) {
	return s.ApplyFunc(ctx, css)
}
func (s *Store) ChangesFor(ctx context.Context, actor patina.ActorID, r patina.Range, maxBytes int, fn func(patina.Changeset) error) error {
	return s.ChangesForFunc(ctx, actor, r, maxBytes, fn)
}
func (s *Store) PartialChangesFor(ctx context.Context, actor patina.ActorID, v patina.Version, seqs []patina.Range, maxBytes int, fn func(patina.Changeset) error) error {
	return s.PartialChangesForFunc(ctx, actor, v, seqs, maxBytes, fn)
}
func (s *Store) SyncState() patina.SyncState { return s.SyncStateFunc() }
func (s *Store) Close() error                { return s.CloseFunc() }

// Membership is a patina.Membership.
type Membership struct {
	MembersFunc func() []patina.Member
	LocalFunc   func() patina.Member
}

func (m *Membership) Members() []patina.Member { return m.MembersFunc() }
func (m *Membership) Local() patina.Member     { return m.LocalFunc() }

// Broadcaster is a patina.Broadcaster.
type Broadcaster struct {
	BroadcastFunc func(cs patina.Changeset)
	ForwardFunc   func(cs patina.Changeset, from patina.ActorID, ttl int)
}

func (b *Broadcaster) Broadcast(cs patina.Changeset) { b.BroadcastFunc(cs) }
func (b *Broadcaster) Forward(cs patina.Changeset, from patina.ActorID, ttl int) {
	b.ForwardFunc(cs, from, ttl)
}

// PeerClient is a patina.PeerClient.
type PeerClient struct {
	SyncStateFunc func(ctx context.Context, peer patina.Member) (patina.SyncState, error)
	PullFunc      func(ctx context.Context, peer patina.Member, needs []patina.Need, fn func(patina.Changeset) error) error
}

func (p *PeerClient) SyncState(ctx context.Context, peer patina.Member) (patina.SyncState, error) {
	return p.SyncStateFunc(ctx, peer)
}
func (p *PeerClient) Pull(ctx context.Context, peer patina.Member, needs []patina.Need, fn func(patina.Changeset) error) error {
	return p.PullFunc(ctx, peer, needs, fn)
}

// SyncServer is a patina.SyncServer.
type SyncServer struct {
	SyncStateFunc         func() patina.SyncState
	ChangesForFunc        func(ctx context.Context, actor patina.ActorID, r patina.Range, maxBytes int, fn func(patina.Changeset) error) error
	PartialChangesForFunc func(ctx context.Context, actor patina.ActorID, v patina.Version, seqs []patina.Range, maxBytes int, fn func(patina.Changeset) error) error
}

func (s *SyncServer) SyncState() patina.SyncState { return s.SyncStateFunc() }
func (s *SyncServer) ChangesFor(ctx context.Context, actor patina.ActorID, r patina.Range, maxBytes int, fn func(patina.Changeset) error) error {
	return s.ChangesForFunc(ctx, actor, r, maxBytes, fn)
}
func (s *SyncServer) PartialChangesFor(ctx context.Context, actor patina.ActorID, v patina.Version, seqs []patina.Range, maxBytes int, fn func(patina.Changeset) error) error {
	return s.PartialChangesForFunc(ctx, actor, v, seqs, maxBytes, fn)
}
