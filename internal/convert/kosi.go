package convert

import (
	"fmt"
	"strings"
	"unicode"
)

// source is a KOSI package definition, read from package.kosi or
// package.yaml.
type source struct {
	meta       []kv // top-level assignments, in order
	files      []kv // id -> relative path
	containers []container
	sections   map[string][]stmt // install, update, delete
}

type kv struct {
	key, value string
	line       int
}

type container struct {
	id    string
	parts []string
	line  int
}

// stmt is a plugin call, or an if or loop with nested statements.
type stmt struct {
	plugin string
	args   []kv
	line   int
	body   []stmt
	orElse []stmt
}

func (s stmt) arg(names ...string) string {
	for _, a := range s.args {
		for _, n := range names {
			if strings.EqualFold(a.key, n) {
				return a.value
			}
		}
	}
	return ""
}

// token kinds.
const (
	tEOF = iota
	tIdent
	tString
	tPunct
)

type token struct {
	kind int
	text string
	line int
}

// lex splits package.kosi into tokens. Comments (// and #) are skipped
// although KOSI does not document them.
func lex(src string) ([]token, error) {
	var toks []token
	line := 1
	rs := []rune(src)
	for i := 0; i < len(rs); {
		r := rs[i]
		switch {
		case r == '\n':
			line++
			i++
		case unicode.IsSpace(r):
			i++
		case r == '#' || (r == '/' && i+1 < len(rs) && rs[i+1] == '/'):
			for i < len(rs) && rs[i] != '\n' {
				i++
			}
		case r == '"' || r == '\'':
			start := line
			quote := r
			var b strings.Builder
			i++
			for {
				if i >= len(rs) {
					return nil, fmt.Errorf("line %d: unterminated string", start)
				}
				c := rs[i]
				if c == quote {
					i++
					break
				}
				if c == '\\' && quote == '"' && i+1 < len(rs) && (rs[i+1] == '"' || rs[i+1] == '\\') {
					c = rs[i+1]
					i++
				}
				if c == '\n' {
					line++
				}
				b.WriteRune(c)
				i++
			}
			s := b.String()
			// Language 0.1.0 wraps values as '"value"'.
			if quote == '\'' && len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
				s = s[1 : len(s)-1]
			}
			toks = append(toks, token{tString, s, start})
		case unicode.IsLetter(r) || r == '_':
			j := i
			for j < len(rs) && (unicode.IsLetter(rs[j]) || unicode.IsDigit(rs[j]) || strings.ContainsRune("_-.", rs[j])) {
				j++
			}
			toks = append(toks, token{tIdent, string(rs[i:j]), line})
			i = j
		case strings.ContainsRune("={}()[];,", r):
			toks = append(toks, token{tPunct, string(r), line})
			i++
		default:
			return nil, fmt.Errorf("line %d: unexpected character %q", line, r)
		}
	}
	return append(toks, token{tEOF, "", line}), nil
}

type parser struct {
	toks  []token
	pos   int
	depth int
}

// maxNesting bounds nested blocks.
const maxNesting = 50

func (p *parser) peek() token { return p.toks[p.pos] }

func (p *parser) next() token {
	t := p.toks[p.pos]
	if t.kind != tEOF {
		p.pos++
	}
	return t
}

func (p *parser) is(text string) bool {
	t := p.peek()
	return t.kind == tPunct && t.text == text
}

func (p *parser) expect(text string) error {
	t := p.next()
	if t.kind != tPunct || t.text != text {
		return fmt.Errorf("line %d: expected %q, found %s", t.line, text, describeToken(t))
	}
	return nil
}

func describeToken(t token) string {
	switch t.kind {
	case tEOF:
		return "end of file"
	case tString:
		return fmt.Sprintf("string %q", t.text)
	}
	return fmt.Sprintf("%q", t.text)
}

// skipSemis skips optional ';' separators, which KOSI examples use loosely.
func (p *parser) skipSemis() {
	for p.is(";") || p.is(",") {
		p.next()
	}
}

// parseKosi parses package.kosi.
func parseKosi(src string) (*source, error) {
	toks, err := lex(src)
	if err != nil {
		return nil, err
	}
	p := &parser{toks: toks}
	s := &source{sections: map[string][]stmt{}}
	for {
		p.skipSemis()
		t := p.next()
		switch {
		case t.kind == tEOF:
			return s, nil
		case t.kind != tIdent:
			return nil, fmt.Errorf("line %d: expected a name, found %s", t.line, describeToken(t))
		}
		name := strings.ToLower(t.text)
		switch {
		case p.is("{"):
			body, err := p.block()
			if err != nil {
				return nil, err
			}
			s.sections[name] = append(s.sections[name], body...)
		case p.is("="):
			p.next()
			if p.is("{") {
				if err := p.table(s, name, t.line); err != nil {
					return nil, err
				}
				continue
			}
			v := p.next()
			if v.kind != tString && v.kind != tIdent {
				return nil, fmt.Errorf("line %d: expected a value for %s, found %s", v.line, t.text, describeToken(v))
			}
			s.meta = append(s.meta, kv{name, v.text, t.line})
		default:
			return nil, fmt.Errorf("line %d: expected '=' or '{' after %s, found %s", t.line, t.text, describeToken(p.peek()))
		}
	}
}

// table parses files = {...} and containers = {...}.
func (p *parser) table(s *source, name string, line int) error {
	if err := p.expect("{"); err != nil {
		return err
	}
	for {
		p.skipSemis()
		if p.is("}") {
			p.next()
			return nil
		}
		k := p.next()
		if k.kind != tIdent && k.kind != tString {
			return fmt.Errorf("line %d: expected an entry name in %s, found %s", k.line, name, describeToken(k))
		}
		if err := p.expect("="); err != nil {
			return err
		}
		var vals []string
		if p.is("[") {
			p.next()
			for !p.is("]") {
				v := p.next()
				if v.kind != tString && v.kind != tIdent {
					return fmt.Errorf("line %d: expected a string in %s.%s, found %s", v.line, name, k.text, describeToken(v))
				}
				vals = append(vals, v.text)
				p.skipSemis()
			}
			p.next()
		} else {
			v := p.next()
			if v.kind != tString && v.kind != tIdent {
				return fmt.Errorf("line %d: expected a string for %s.%s, found %s", v.line, name, k.text, describeToken(v))
			}
			vals = []string{v.text}
		}
		switch name {
		case "files":
			s.files = append(s.files, kv{k.text, strings.Join(vals, ","), k.line})
		case "containers":
			s.containers = append(s.containers, container{k.text, vals, k.line})
		default:
			s.meta = append(s.meta, kv{name + "." + k.text, strings.Join(vals, ","), k.line})
		}
	}
}

// block parses { stmt... }.
func (p *parser) block() ([]stmt, error) {
	if err := p.expect("{"); err != nil {
		return nil, err
	}
	p.depth++
	defer func() { p.depth-- }()
	if p.depth > maxNesting {
		return nil, fmt.Errorf("line %d: blocks nested more than %d deep", p.peek().line, maxNesting)
	}
	var out []stmt
	for {
		p.skipSemis()
		if p.is("}") {
			p.next()
			return out, nil
		}
		st, err := p.stmt()
		if err != nil {
			return nil, err
		}
		out = append(out, st)
	}
}

func (p *parser) stmt() (stmt, error) {
	t := p.next()
	if t.kind != tIdent {
		return stmt{}, fmt.Errorf("line %d: expected a plugin call, found %s", t.line, describeToken(t))
	}
	st := stmt{plugin: t.text, line: t.line}
	args, err := p.args()
	if err != nil {
		return stmt{}, err
	}
	st.args = args
	switch strings.ToLower(t.text) {
	case "if":
		if n := p.peek(); n.kind == tIdent && strings.EqualFold(n.text, "then") {
			p.next()
		}
		if st.body, err = p.block(); err != nil {
			return stmt{}, err
		}
		if n := p.peek(); n.kind == tIdent && strings.EqualFold(n.text, "else") {
			p.next()
			if st.orElse, err = p.block(); err != nil {
				return stmt{}, err
			}
		}
	case "loop":
		if st.body, err = p.block(); err != nil {
			return stmt{}, err
		}
	}
	return st, nil
}

// args parses (key = "value"; ...).
func (p *parser) args() ([]kv, error) {
	if err := p.expect("("); err != nil {
		return nil, err
	}
	var out []kv
	for {
		p.skipSemis()
		if p.is(")") {
			p.next()
			return out, nil
		}
		k := p.next()
		if k.kind != tIdent {
			return nil, fmt.Errorf("line %d: expected an argument name, found %s", k.line, describeToken(k))
		}
		if err := p.expect("="); err != nil {
			return nil, err
		}
		v := p.next()
		if v.kind != tString && v.kind != tIdent {
			return nil, fmt.Errorf("line %d: expected a value for %s, found %s", v.line, k.text, describeToken(v))
		}
		out = append(out, kv{k.text, v.text, k.line})
	}
}
