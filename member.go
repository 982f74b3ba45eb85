package patina

// MemberState is a member's liveness as seen by failure detection.
type MemberState uint8

// Member states.
const (
	MemberAlive MemberState = iota
	MemberSuspect
	MemberDead
	MemberLeft
)

func (s MemberState) String() string {
	switch s {
	case MemberAlive:
		return "alive"
	case MemberSuspect:
		return "suspect"
	case MemberDead:
		return "dead"
	case MemberLeft:
		return "left"
	}
	return "unknown"
}

// Member is one node of the cluster as membership sees it.
type Member struct {
	Actor     ActorID
	Name      string // memberlist node name
	Addr      string // gossip and peer data-plane address, host:port
	APIAddr   string // HTTP API address, host:port ("" if not served)
	Region    string
	ClusterID uint16
	Protocol  uint16 // wire protocol version
	State     MemberState
}

// Membership reports the cluster's members.
type Membership interface {
	// Members returns every known member except this node.
	Members() []Member
	// Local returns this node.
	Local() Member
}
