//go:build linux

package build

import (
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/shell"

	"github.com/berth-dev/berth/runtime/errdefs"
)

// A Dockerfile's variables can double in size at every ARG or ENV (a
// 446-byte file of nested expansions once drove the engine to 1.4 GB), so
// a word is expanded only if its result cannot exceed maxExpansion, and a
// stage's variables and labels together stay under maxVariables.
const (
	maxExpansion = 1 << 20
	maxVariables = 8 << 20
)

// expansionBound is an upper bound of the length of word expanded against
// vals (name → value length): every $name or ${name…} adds its value's
// length, and a ${name/pattern/replacement} may replace each character of
// its value with anything the word can expand to.
func expansionBound(word string, vals map[string]int) int {
	base := len(word)
	var replaced []int
	for i := 0; i < len(word); i++ {
		if word[i] != '$' {
			continue
		}
		j := i + 1
		braced := j < len(word) && word[j] == '{'
		if braced {
			j++
		}
		k := j
		for k < len(word) && (word[k] == '_' || word[k] >= 'a' && word[k] <= 'z' || word[k] >= 'A' && word[k] <= 'Z' || word[k] >= '0' && word[k] <= '9') {
			k++
		}
		n := vals[word[j:k]]
		base += n
		if braced && k < len(word) && word[k] == '/' {
			replaced = append(replaced, n)
		}
	}
	total := base
	for _, n := range replaced {
		if total > maxExpansion {
			break
		}
		total += (n + 1) * base
	}
	return total
}

// expander expands words against env, refusing what would grow too large.
type expander struct {
	lex  *shell.Lex
	env  shell.EnvGetter
	vals map[string]int
	size int // all of env and what this expander produced, in bytes
}

func newExpander(lex *shell.Lex, env []string) *expander {
	e := &expander{lex: lex, env: shell.EnvsFromSlice(env), vals: make(map[string]int, len(env))}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		e.vals[k] = len(v)
		e.size += len(kv)
	}
	return e
}

func (e *expander) check(word string) error {
	if e.size > maxVariables {
		return errdefs.InvalidArgument("the build's variables take more than %d MiB", maxVariables>>20)
	}
	if expansionBound(word, e.vals) > maxExpansion {
		return errdefs.InvalidArgument("expanding %.60q could make a word larger than %d MiB: refused", word, maxExpansion>>20)
	}
	return nil
}

func (e *expander) word(word string) (string, error) {
	if err := e.check(word); err != nil {
		return "", err
	}
	w, _, err := e.lex.ProcessWord(word, e.env)
	e.size += len(w) // one instruction's words add up too
	return w, err
}

func (e *expander) words(word string) ([]string, error) {
	if err := e.check(word); err != nil {
		return nil, err
	}
	ws, err := e.lex.ProcessWords(word, e.env)
	for _, w := range ws {
		e.size += len(w)
	}
	return ws, err
}

// configSize is what a stage's variables and labels take.
func configSize(st *stageState) int {
	n := 0
	for _, e := range st.config.Env {
		n += len(e)
	}
	for k, v := range st.config.Labels {
		n += len(k) + len(v)
	}
	for _, a := range st.args {
		n += len(a.name)
		if a.value != nil {
			n += len(*a.value)
		}
	}
	return n
}
