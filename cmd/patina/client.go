package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/patinadb/patina"
	phttp "github.com/patinadb/patina/http"
)

func clientFlags(name string) (*flag.FlagSet, *string, *string) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	addr := fs.String("api-addr", envOr("PATINA_API_ADDR", "127.0.0.1:8080"), "agent API address (env PATINA_API_ADDR)")
	token := fs.String("token", os.Getenv("PATINA_TOKEN"), "bearer token (env PATINA_TOKEN)")
	return fs, addr, token
}

func envOr(k, d string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return d
}

func runExec(ctx context.Context, args []string, out io.Writer) error {
	fs, addr, token := clientFlags("exec")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() == 0 {
		return fmt.Errorf("give at least one SQL statement, e.g. patina exec \"INSERT INTO services (id) VALUES ('a')\"")
	}
	var stmts []patina.Statement
	for _, s := range fs.Args() {
		stmts = append(stmts, patina.Statement{SQL: s})
	}
	c := &phttp.Client{BaseURL: *addr, Token: *token}
	res, err := c.Transact(ctx, stmts)
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(res)
}

func runQuery(ctx context.Context, args []string, out io.Writer) error {
	fs, addr, token := clientFlags("query")
	columns := fs.Bool("columns", false, "print a header line with the column names")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("give exactly one SQL query (quote it), e.g. patina query \"SELECT * FROM services\"")
	}
	c := &phttp.Client{BaseURL: *addr, Token: *token}
	cols, rows, err := c.Query(ctx, patina.Statement{SQL: fs.Arg(0)})
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	if *columns {
		fmt.Fprintln(tw, strings.Join(cols, "\t"))
	}
	for _, r := range rows {
		parts := make([]string, len(r))
		for i, v := range r {
			switch x := v.(type) {
			case nil:
				parts[i] = "NULL"
			case string:
				parts[i] = x
			default:
				b, _ := json.Marshal(x)
				parts[i] = string(b)
			}
		}
		fmt.Fprintln(tw, strings.Join(parts, "\t"))
	}
	return tw.Flush()
}

func runMembers(ctx context.Context, args []string, out io.Writer) error {
	fs, addr, token := clientFlags("members")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := &phttp.Client{BaseURL: *addr, Token: *token}
	ms, err := c.Members(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ACTOR\tREGION\tSTATE\tGOSSIP\tAPI")
	for _, m := range ms {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", m.Actor, m.Region, m.State, m.Addr, m.APIAddr)
	}
	return tw.Flush()
}

func runStatus(ctx context.Context, args []string, out io.Writer) error {
	fs, addr, token := clientFlags("status")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c := &phttp.Client{BaseURL: *addr, Token: *token}
	st, err := c.Status(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "actor:     %s\nregion:    %s\ncluster:   %d\nmembers:   %d\ngaps:      %d versions\npartials:  %d\ndeferred:  %d changes\np99 lag:   %.3fs\n",
		st.Actor, st.Region, st.ClusterID, len(st.Members), st.GapVersions, st.Partials, st.Deferred, st.LagP99Seconds)
	for name, q := range st.Queues {
		fmt.Fprintf(out, "queue %-10s %d/%d (dropped %d)\n", name+":", q.Len, q.Cap, q.Dropped)
	}
	return nil
}
