package wire_test

import (
	"bufio"
	"bytes"
	"fmt"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/wire"
)

func Example() {
	// Sender: marshal and write a frame.
	var conn bytes.Buffer
	hello := &wire.Hello{Protocol: wire.ProtocolVersion, ClusterID: 1, Region: "fra", Purpose: wire.PurposeSync}
	if err := wire.WriteFrame(&conn, wire.Marshal(nil, hello)); err != nil {
		panic(err)
	}

	// Receiver: cut one frame out of the stream, then decode it.
	frame, err := wire.ReadFrame(bufio.NewReader(&conn), wire.MaxFrameSize)
	if err != nil {
		panic(err)
	}
	m, err := wire.Unmarshal(frame)
	if err != nil {
		panic(err)
	}
	fmt.Printf("%s from region %s\n", m.Type(), m.(*wire.Hello).Region)

	// Poison input is refused with the field and byte that failed.
	bad := wire.Marshal(nil, &wire.SyncChangeset{Set: patina.Changeset{Version: 0}})
	_, err = wire.Unmarshal(bad)
	fmt.Println(err)
	// Output:
	// Hello from region fra
	// wire: decode SyncChangeset: version: version 0 does not exist (versions start at 1) at byte 21 of 35
}
