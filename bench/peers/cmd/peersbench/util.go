package main

import (
	"os"
	"strconv"
	"strings"
)

func readFile(p string) ([]byte, error) { return os.ReadFile(p) }
func firstLine(b []byte) string {
	s, _, _ := strings.Cut(string(b), "\n")
	return s
}
func splitFields(s string) []string { return strings.Fields(s) }
func parseUint(s string) uint64 {
	v, _ := strconv.ParseUint(s, 10, 64)
	return v
}
