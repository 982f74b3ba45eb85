package gossip

import (
	"encoding/json"
	"fmt"

	"github.com/patinadb/patina"
)

// meta is a node's memberlist metadata (limited to 512 bytes by memberlist).
type meta struct {
	Actor     string `json:"a"`
	Region    string `json:"r"`
	ClusterID uint16 `json:"c"`
	Protocol  uint16 `json:"p"`
	APIAddr   string `json:"api,omitempty"`
}

func (m meta) encode() []byte {
	b, _ := json.Marshal(m)
	return b
}

func decodeMeta(b []byte) (meta, patina.ActorID, error) {
	var m meta
	if err := json.Unmarshal(b, &m); err != nil {
		return m, patina.ActorID{}, fmt.Errorf("decode node metadata: %w", err)
	}
	a, err := patina.ParseActorID(m.Actor)
	if err != nil {
		return m, a, fmt.Errorf("decode node metadata: %w", err)
	}
	return m, a, nil
}
