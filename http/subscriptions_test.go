package http

import (
	"testing"

	"github.com/patinadb/patina"
)

// TestAppendEvent pins the NDJSON lines to Corrosion's shapes.
func TestAppendEvent(t *testing.T) {
	for _, tc := range []struct {
		ev   patina.Event
		want string
	}{
		{patina.Event{Kind: patina.EventColumns, Columns: []string{"id", "port"}}, `{"columns":["id","port"]}`},
		{patina.Event{Kind: patina.EventRow, RowID: 1, Cells: []patina.Value{patina.Text("a"), patina.Int(80)}}, `{"row":[1,["a",80]]}`},
		{patina.Event{Kind: patina.EventEndOfQuery, Seconds: 0.5, ChangeID: 7}, `{"eoq":{"time":0.5,"change_id":7}}`},
		{patina.Event{Kind: patina.EventChange, Change: patina.ChangeDelete, RowID: 3, Cells: []patina.Value{patina.Null(), patina.Real(1)}, ChangeID: 8}, `{"change":["delete",3,[null,1.0],8]}`},
	} {
		if got := string(AppendEvent(nil, tc.ev)); got != tc.want+"\n" {
			t.Errorf("%v: %s, want %s", tc.ev.Kind, got, tc.want)
		}
	}
	n := patina.Notification{Kind: patina.ChangeUpdate, PK: []patina.Value{patina.Text("s1"), patina.Blob([]byte{1})}}
	if got, want := string(AppendNotification(nil, n)), `{"notify":["update",["s1",[1]]]}`+"\n"; got != want {
		t.Errorf("notification %s, want %s", got, want)
	}
}
