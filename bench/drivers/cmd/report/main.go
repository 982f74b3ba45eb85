// Command report reads the RESULT and BUILD lines that run.sh collects on
// stdin and prints markdown tables: median (min–max) per figure.
package main

import (
	"bufio"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
)

type key struct{ driver, dir, metric string }

func main() {
	vals := map[key][]float64{}
	var drivers, dirs []string
	var builds [][]string
	var loads []float64
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		f := strings.Split(sc.Text(), "\t")
		switch {
		case len(f) == 5 && f[0] == "RESULT":
			v, err := strconv.ParseFloat(f[4], 64)
			if err != nil {
				continue
			}
			k := key{f[1], f[2], f[3]}
			vals[k] = append(vals[k], v)
			if !slices.Contains(drivers, f[1]) {
				drivers = append(drivers, f[1])
			}
			if !slices.Contains(dirs, f[2]) {
				dirs = append(dirs, f[2])
			}
		case len(f) == 2 && f[0] == "LOAD":
			if v, err := strconv.ParseFloat(f[1], 64); err == nil {
				loads = append(loads, v)
			}
		case len(f) >= 2 && f[0] == "BUILD":
			builds = append(builds, f[1:])
		}
	}
	stat := func(d, dir, m string, scale float64) (med, lo, hi float64, n int) {
		v := slices.Clone(vals[key{d, dir, m}])
		if len(v) == 0 {
			return 0, 0, 0, 0
		}
		slices.Sort(v)
		return median(v) * scale, v[0] * scale, v[len(v)-1] * scale, len(v)
	}
	cell := func(d, dir, m string, scale float64) string {
		med, lo, hi, n := stat(d, dir, m, scale)
		if n == 0 {
			return "–"
		}
		return fmt.Sprintf("%s (%s–%s)", k(med), k(lo), k(hi))
	}
	med := func(d, dir, m string) float64 { v, _, _, _ := stat(d, dir, m, 1); return v }
	best := func(d, dir, m string) float64 { _, _, v, _ := stat(d, dir, m, 1); return v }
	for _, dir := range dirs {
		for _, sfx := range []string{"", "_cpu"} {
			n := len(vals[key{drivers[0], dir, "raw_rows_s" + sfx}])
			if sfx == "" {
				fmt.Printf("\n### %s, per wall-clock second (median of %d runs, min–max in brackets)\n\n", dir, n)
			} else {
				fmt.Printf("\n### %s, per CPU second of the process (user+sys; median of %d runs)\n\n", dir, n)
			}
			fmt.Println("| driver | raw rows/s | raw cells/s | capture rows/s | capture cells/s | capture_vs_raw | apply cells/s | apply_vs_raw | point reads/s |")
			fmt.Println("|---|---|---|---|---|---|---|---|---|")
			for _, d := range drivers {
				raw, capt, app := med(d, dir, "raw_rows_s"+sfx), med(d, dir, "capture_rows_s"+sfx), med(d, dir, "apply_rows_s"+sfx)
				fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s | %s |\n", d,
					cell(d, dir, "raw_rows_s"+sfx, 1), cell(d, dir, "raw_rows_s"+sfx, 4),
					cell(d, dir, "capture_rows_s"+sfx, 1), cell(d, dir, "capture_rows_s"+sfx, 4),
					ratio(raw, capt, "x"),
					cell(d, dir, "apply_rows_s"+sfx, 4), ratio(app, raw, ""),
					cell(d, dir, "read_s"+sfx, 1))
			}
			ref := drivers[0]
			fmt.Printf("\nRelative to %s: median (min–max) of the per-run ratios, run i of a driver against run i of %s, which ran minutes apart (>1 = faster):\n\n", ref, ref)
			fmt.Println("| driver | raw | capture | apply | point read |")
			fmt.Println("|---|---|---|---|---|")
			for _, d := range drivers[1:] {
				fmt.Printf("| %s |", d)
				for _, m := range []string{"raw_rows_s", "capture_rows_s", "apply_rows_s", "read_s"} {
					fmt.Printf(" %s |", paired(vals[key{d, dir, m + sfx}], vals[key{ref, dir, m + sfx}]))
				}
				fmt.Println()
			}
		}
	}
	for _, dir := range dirs {
		n := len(vals[key{drivers[0], dir, "raw_rows_s"}])
		fmt.Printf("\n### %s, best of %d runs per wall-clock second (the run least disturbed by other load)\n\n", dir, n)
		fmt.Println("| driver | raw rows/s | capture rows/s | capture_vs_raw | apply cells/s | apply_vs_raw | point reads/s | vs mattn: raw / capture / apply / read |")
		fmt.Println("|---|---|---|---|---|---|---|---|")
		ref := drivers[0]
		for _, d := range drivers {
			raw, capt, app, rd := best(d, dir, "raw_rows_s"), best(d, dir, "capture_rows_s"), best(d, dir, "apply_rows_s"), best(d, dir, "read_s")
			fmt.Printf("| %s | %s | %s | %s | %s | %s | %s | %s / %s / %s / %s |\n", d, k(raw), k(capt), ratio(raw, capt, "x"),
				k(4*app), ratio(app, raw, ""), k(rd),
				ratio(raw, best(ref, dir, "raw_rows_s"), ""), ratio(capt, best(ref, dir, "capture_rows_s"), ""),
				ratio(app, best(ref, dir, "apply_rows_s"), ""), ratio(rd, best(ref, dir, "read_s"), ""))
		}
	}
	if len(loads) > 0 {
		slices.Sort(loads)
		fmt.Printf("\n1-minute load average at the start of each driver run: median %.2f, range %.2f–%.2f (2 vCPU; one benchmark is 1.0)\n",
			median(loads), loads[0], loads[len(loads)-1])
	}
	if len(builds) > 0 {
		fmt.Print("\n### Build (separate GOCACHE per driver; modules already downloaded)\n\n")
		fmt.Println("| binary | fully cold (empty GOCACHE): wall / CPU | driver-only (GOCACHE pre-filled by `go build std`): wall / CPU | binary size |")
		fmt.Println("|---|---|---|---|")
		for _, b := range builds {
			fmt.Printf("| %s |\n", strings.Join(b, " | "))
		}
	}
}

// paired is the median (min–max) of a[i]/b[i].
func paired(a, b []float64) string {
	var r []float64
	for i := range min(len(a), len(b)) {
		if b[i] != 0 {
			r = append(r, a[i]/b[i])
		}
	}
	if len(r) == 0 {
		return "–"
	}
	slices.Sort(r)
	return fmt.Sprintf("%.2f (%.2f–%.2f)", median(r), r[0], r[len(r)-1])
}

func median(v []float64) float64 {
	if len(v)%2 == 1 {
		return v[len(v)/2]
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2
}

func ratio(a, b float64, suffix string) string {
	if a == 0 || b == 0 {
		return "–"
	}
	return fmt.Sprintf("%.2f%s", a/b, suffix)
}

// k formats a rate with a thousands separator.
func k(v float64) string {
	if v == 0 {
		return "–"
	}
	s := strconv.FormatInt(int64(v+0.5), 10)
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	return b.String()
}
