// Command report reads the raw outputs of the load tools that
// scripts/bench.sh runs (hey's text summary, ghz's JSON report) and prints
// the benchmark tables: per run rps, p50, p99 and the count of non-2xx
// answers, and per case Ferry's throughput as a fraction of the bare
// handlers' with the targets checked.
//
//	report rps FILE                 print a run's requests per second (an integer)
//	report table [-md] DIR          print the tables for every run in DIR
//	report check EXPECTED RESPONSE  compare a V1 or V2 answer with the reference predictions
//
// Result files are named <server>.<proto>.b<batch>.<max|half>.<hey|ghz>,
// for example ferry.grpc.b64.half.ghz.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

func main() {
	if err := runCmd(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "report:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage: report rps FILE | report table [-md] DIR | report check EXPECTED RESPONSE")

func runCmd(args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	switch args[0] {
	case "rps":
		if len(args) != 2 {
			return errUsage
		}
		tool := filepath.Ext(args[1])
		if tool != ".hey" && tool != ".ghz" {
			return fmt.Errorf("%s: want a .hey or .ghz file", args[1])
		}
		r, err := parseFile(args[1], tool[1:])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%.0f\n", r.RPS)
		return nil
	case "table":
		fs := flag.NewFlagSet("table", flag.ContinueOnError)
		md := fs.Bool("md", false, "print Markdown tables")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() != 1 {
			return errUsage
		}
		res, err := loadDir(fs.Arg(0))
		if err != nil {
			return err
		}
		writeRuns(stdout, res, *md)
		fmt.Fprintln(stdout)
		writeSummary(stdout, res, *md)
		if n := res.badTotal(); n > 0 {
			return fmt.Errorf("%d requests failed (non-2xx, non-OK or transport errors); the numbers above are not valid", n)
		}
		return nil
	case "check":
		if len(args) != 3 {
			return errUsage
		}
		maxErr, n, err := checkFiles(args[1], args[2])
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d predictions match the reference (max abs error %.2g)\n", n, maxErr)
		return nil
	}
	return errUsage
}
