package purity

import "testing"

// TestImpurities checks that the checker itself catches what it must.
func TestImpurities(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want int
	}{
		{"clean", "package p\nimport \"time\"\nfunc f(now func() time.Time) time.Time { return now() }\n", 0},
		{"os", "package p\nimport \"os\"\nvar _ = os.Args\n", 1},
		{"slog", "package p\nimport \"log/slog\"\nvar _ = slog.Info\n", 1},
		{"rand", "package p\nimport \"math/rand\"\nvar _ = rand.Int\n", 1},
		{"memberlist", "package p\nimport \"github.com/hashicorp/memberlist\"\nvar _ memberlist.Config\n", 1},
		{"time.Now", "package p\nimport \"time\"\nvar _ = time.Now()\n", 1},
		{"renamed time.Now", "package p\nimport t \"time\"\nvar _ = t.Now\n", 1},
		{"go statement", "package p\nfunc f() { go f() }\n", 1},
		{"Now of another package", "package p\nimport \"time\"\ntype c struct{ Now func() time.Time }\nvar x c\nvar _ = x.Now\n", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			found, err := Impurities("x.go", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			if len(found) != tt.want {
				t.Fatalf("found %d impurities %q, want %d", len(found), found, tt.want)
			}
		})
	}
}
