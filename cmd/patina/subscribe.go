package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/patinadb/patina"
	"github.com/patinadb/patina/client"
	phttp "github.com/patinadb/patina/http"
)

// runSubscribe prints a subscription's events until interrupted; the
// client resumes by itself when the agent restarts.
func runSubscribe(ctx context.Context, args []string, out io.Writer) error {
	fs, addr, token := clientFlags("subscribe")
	asJSON := fs.Bool("json", false, "print Corrosion's NDJSON lines instead of text")
	from := fs.Int64("from", -1, "resume subscription --id after this change id (prints changes only)")
	id := fs.String("id", "", "attach to this subscription id instead of subscribing to SQL")
	skipRows := fs.Bool("skip-rows", false, "print changes only, from now on")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := client.New(*addr)
	c.Token = *token
	var (
		sub *client.Subscription
		err error
	)
	switch {
	case *id != "":
		if fs.NArg() != 0 {
			return errors.New("give either --id or SQL, not both")
		}
		sub, err = c.Resume(ctx, *id, uint64(max(*from, 0)))
	case fs.NArg() == 1:
		var opts []client.SubOption
		if *from >= 0 {
			opts = append(opts, client.From(uint64(*from)))
		}
		if *skipRows {
			opts = append(opts, client.SkipRows())
		}
		sub, err = c.Subscribe(ctx, patina.Statement{SQL: fs.Arg(0)}, opts...)
	default:
		return errors.New(`give exactly one SQL query (quote it), e.g. patina subscribe "SELECT id, address FROM services WHERE name = 'web'"`)
	}
	if err != nil {
		return err
	}
	defer sub.Close()
	if !*asJSON {
		fmt.Fprintf(out, "# subscription %s\n", sub.ID())
	}
	for {
		ev, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("%w (last change %d; resume with: patina subscribe --id %s --from %d)", err, sub.LastChangeID(), sub.ID(), sub.LastChangeID())
		}
		if *asJSON {
			out.Write(phttp.AppendEvent(nil, ev))
			continue
		}
		fmt.Fprintln(out, formatEvent(ev))
	}
}

func formatEvent(ev patina.Event) string {
	cells := func(vals []patina.Value) string {
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = cellText(v)
		}
		return strings.Join(parts, "\t")
	}
	switch ev.Kind {
	case patina.EventColumns:
		return "columns\t" + strings.Join(ev.Columns, "\t")
	case patina.EventRow:
		return fmt.Sprintf("row %d\t%s", ev.RowID, cells(ev.Cells))
	case patina.EventEndOfQuery:
		return fmt.Sprintf("end of rows at change %d (%.3fs)", ev.ChangeID, ev.Seconds)
	case patina.EventChange:
		return fmt.Sprintf("%s %d\t%s\t(change %d)", ev.Change, ev.RowID, cells(ev.Cells), ev.ChangeID)
	}
	return "?"
}

func cellText(v patina.Value) string {
	switch v.Type {
	case patina.TypeNull:
		return "NULL"
	case patina.TypeText:
		return string(v.Bytes)
	}
	b := phttp.AppendValue(nil, v)
	return string(b)
}

// runSubs serves `patina subs list` and `patina subs info ID`.
func runSubs(ctx context.Context, args []string, out io.Writer) error {
	if len(args) == 0 {
		return errors.New("give a subcommand: patina subs list | patina subs info ID")
	}
	sub, args := args[0], args[1:]
	fs, addr, token := clientFlags("subs " + sub)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := client.New(*addr)
	c.Token = *token
	switch sub {
	case "list":
		infos, err := c.Subscriptions(ctx)
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(out).Encode(infos)
		}
		tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "ID\tSUBSCRIBERS\tROWS\tLAST CHANGE\tSTRATEGY\tSQL")
		for _, in := range infos {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%s\t%s\n", in.ID, in.Subscribers, in.Rows, in.LastChangeID, in.Strategy, oneLine(in.SQL))
		}
		return tw.Flush()
	case "info":
		if fs.NArg() != 1 {
			return errors.New("give the subscription id: patina subs info ID (see patina subs list)")
		}
		in, err := c.SubscriptionInfo(ctx, fs.Arg(0))
		if err != nil {
			return err
		}
		if *asJSON {
			return json.NewEncoder(out).Encode(in)
		}
		fmt.Fprintf(out, "id:            %s\nhash:          %s\nsql:           %s\ncolumns:       %s\ntables:        %s\nstrategy:      %s\nsubscribers:   %d\nrows:          %d\nlast change:   %d\noldest kept:   %d\ncreated:       %s\nevaluations:   %d (%.3fs)\n",
			in.ID, in.Hash, in.SQL, strings.Join(in.Columns, ", "), strings.Join(in.Tables, ", "), in.Strategy,
			in.Subscribers, in.Rows, in.LastChangeID, in.OldestChangeID, in.CreatedAt.Format(time.RFC3339), in.Evaluations, in.EvalSeconds)
		return nil
	}
	return fmt.Errorf("unknown subcommand %q: patina subs list | patina subs info ID", sub)
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 80 {
		s = s[:77] + "..."
	}
	return s
}
