package pubsub

import (
	"strings"
)

// tokKind classifies SQL tokens, following SQLite's tokenizer closely
// enough to find clause boundaries; SQLite itself has already accepted the
// statement when we look at it.
type tokKind uint8

const (
	tokIdent  tokKind = iota + 1 // bare word: keyword or identifier
	tokQuoted                    // "x", `x` or [x]: an identifier
	tokString                    // 'x'
	tokNumber                    // 12, 1.5e3, 0x1F
	tokBlob                      // x'00ff'
	tokParam                     // ?, ?3, :a, @a, $a
	tokOp                        // punctuation and operators
)

type token struct {
	kind       tokKind
	text       string // as written
	start, end int    // byte offsets in the SQL
	depth      int    // parenthesis depth before the token
	param      int    // a parameter's number (see numberParams)
}

// upper returns the token as an upper-case keyword ("" unless a bare word).
func (t token) upper() string {
	if t.kind != tokIdent {
		return ""
	}
	return strings.ToUpper(t.text)
}

// ident returns the identifier a bare or quoted word names.
func (t token) ident() (string, bool) {
	switch t.kind {
	case tokIdent:
		return t.text, true
	case tokQuoted:
		q := t.text[0]
		inner := t.text[1 : len(t.text)-1]
		switch q {
		case '"':
			return strings.ReplaceAll(inner, `""`, `"`), true
		case '`':
			return strings.ReplaceAll(inner, "``", "`"), true
		}
		return inner, true
	}
	return "", false
}

func isIdentStart(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= 0x80
}

func isIdentByte(c byte) bool {
	return isIdentStart(c) || c >= '0' && c <= '9' || c == '$'
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// lex splits sql into tokens, dropping spaces and comments. ok is false for
// input it does not understand (an unterminated literal, say); callers then
// take the conservative path.
func lex(sql string) (toks []token, ok bool) {
	depth := 0
	i := 0
	for i < len(sql) {
		c := sql[i]
		start := i
		var kind tokKind
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f':
			i++
			continue
		case c == '-' && i+1 < len(sql) && sql[i+1] == '-':
			for i < len(sql) && sql[i] != '\n' {
				i++
			}
			continue
		case c == '/' && i+1 < len(sql) && sql[i+1] == '*':
			end := strings.Index(sql[i+2:], "*/")
			if end < 0 {
				i = len(sql)
			} else {
				i += 2 + end + 2
			}
			continue
		case c == '\'':
			kind = tokString
			i = scanQuoted(sql, i, '\'')
		case c == '"':
			kind = tokQuoted
			i = scanQuoted(sql, i, '"')
		case c == '`':
			kind = tokQuoted
			i = scanQuoted(sql, i, '`')
		case c == '[':
			kind = tokQuoted
			end := strings.IndexByte(sql[i:], ']')
			if end < 0 {
				return nil, false
			}
			i += end + 1
		case (c == 'x' || c == 'X') && i+1 < len(sql) && sql[i+1] == '\'':
			kind = tokBlob
			i = scanQuoted(sql, i+1, '\'')
		case isDigit(c) || c == '.' && i+1 < len(sql) && isDigit(sql[i+1]):
			kind = tokNumber
			i = scanNumber(sql, i)
		case c == '?':
			kind = tokParam
			i++
			for i < len(sql) && isDigit(sql[i]) {
				i++
			}
		case c == ':' || c == '@' || c == '$':
			kind = tokParam
			i++
			for i < len(sql) && isIdentByte(sql[i]) {
				i++
			}
			if i == start+1 {
				return nil, false
			}
		case isIdentStart(c):
			kind = tokIdent
			for i < len(sql) && isIdentByte(sql[i]) {
				i++
			}
		default:
			kind = tokOp
			i += opLen(sql[i:])
		}
		if i < 0 {
			return nil, false
		}
		t := token{kind: kind, text: sql[start:i], start: start, end: i, depth: depth}
		if kind == tokOp {
			switch t.text {
			case "(":
				depth++
			case ")":
				depth--
				t.depth = depth
				if depth < 0 {
					return nil, false
				}
			}
		}
		toks = append(toks, t)
	}
	return toks, depth == 0
}

// scanQuoted returns the offset after the literal opened at i by q (” is
// an escaped quote), or -1 when it is not closed.
func scanQuoted(sql string, i int, q byte) int {
	i++
	for i < len(sql) {
		if sql[i] == q {
			if i+1 < len(sql) && sql[i+1] == q {
				i += 2
				continue
			}
			return i + 1
		}
		i++
	}
	return -1
}

func scanNumber(sql string, i int) int {
	if sql[i] == '0' && i+1 < len(sql) && (sql[i+1] == 'x' || sql[i+1] == 'X') {
		i += 2
		for i < len(sql) && (isDigit(sql[i]) || sql[i] >= 'a' && sql[i] <= 'f' || sql[i] >= 'A' && sql[i] <= 'F' || sql[i] == '_') {
			i++
		}
		return i
	}
	for i < len(sql) && (isDigit(sql[i]) || sql[i] == '_') {
		i++
	}
	if i < len(sql) && sql[i] == '.' {
		i++
		for i < len(sql) && (isDigit(sql[i]) || sql[i] == '_') {
			i++
		}
	}
	if i < len(sql) && (sql[i] == 'e' || sql[i] == 'E') {
		j := i + 1
		if j < len(sql) && (sql[j] == '+' || sql[j] == '-') {
			j++
		}
		if j < len(sql) && isDigit(sql[j]) {
			i = j
			for i < len(sql) && isDigit(sql[i]) {
				i++
			}
		}
	}
	return i
}

var twoCharOps = []string{"||", "<=", ">=", "==", "!=", "<>", "<<", ">>", "->"}

func opLen(s string) int {
	if strings.HasPrefix(s, "->>") {
		return 3
	}
	for _, op := range twoCharOps {
		if strings.HasPrefix(s, op) {
			return 2
		}
	}
	return 1
}
