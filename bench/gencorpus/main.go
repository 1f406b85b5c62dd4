// Command gencorpus writes a large synthetic corpus as JSONL for benchmarks:
// articles whose sections are sentences drawn, with a fixed seed, from the
// embedded default articles, so the text is real English about the same
// subjects with a realistic vocabulary.
//
//	go run ./bench/gencorpus -articles 2000 -sections 5 > /tmp/big.jsonl
//	go run ./cmd/runnel import --db /tmp/big.db /tmp/big.jsonl
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"regexp"
	"strings"

	"github.com/runnel/runnel/corpus"
)

func main() {
	var (
		articles = flag.Int("articles", 2000, "number of articles")
		sections = flag.Int("sections", 5, "sections per article (each becomes a passage)")
		seed     = flag.Uint64("seed", 1, "random seed")
	)
	flag.Parse()
	sentences, tags := harvest()
	rng := rand.New(rand.NewPCG(*seed, *seed))
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	enc := json.NewEncoder(out)
	for i := range *articles {
		var body strings.Builder
		for s := range *sections {
			fmt.Fprintf(&body, "## Part %d\n\n", s+1)
			for range 4 + rng.IntN(4) {
				body.WriteString(sentences[rng.IntN(len(sentences))])
				body.WriteByte(' ')
			}
			body.WriteString("\n\n")
		}
		first := sentences[rng.IntN(len(sentences))]
		title := strings.Join(strings.Fields(first)[:min(6, len(strings.Fields(first)))], " ")
		enc.Encode(map[string]any{
			"slug":  fmt.Sprintf("synthetic/%05d", i),
			"title": strings.Trim(title, ".,;:"),
			"date":  fmt.Sprintf("2026-%02d-%02d", 1+i%12, 1+i%28),
			"tags":  []string{tags[rng.IntN(len(tags))], tags[rng.IntN(len(tags))]},
			"body":  body.String(),
		})
	}
}

var (
	frontMatter = regexp.MustCompile(`(?s)\A---\n.*?\n---\n`)
	tagLine     = regexp.MustCompile(`(?m)^tags: \[(.*)\]$`)
	sentenceEnd = regexp.MustCompile(`[.!?]\s+`)
)

// harvest collects prose sentences and tags from the embedded articles.
func harvest() (sentences, tags []string) {
	seen := map[string]bool{}
	fs.WalkDir(corpus.FS(), ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		src, _ := fs.ReadFile(corpus.FS(), name)
		if m := tagLine.FindSubmatch(src); m != nil {
			for _, t := range strings.Split(string(m[1]), ",") {
				if t = strings.TrimSpace(t); !seen[t] {
					seen[t] = true
					tags = append(tags, t)
				}
			}
		}
		body := frontMatter.ReplaceAllString(string(src), "")
		for _, para := range strings.Split(body, "\n\n") {
			para = strings.TrimSpace(para)
			if para == "" || strings.HasPrefix(para, "#") || strings.HasPrefix(para, "```") ||
				strings.HasPrefix(para, "-") || strings.HasPrefix(para, "|") || strings.HasPrefix(para, "    ") {
				continue
			}
			para = strings.Join(strings.Fields(para), " ")
			for _, s := range sentenceEnd.Split(para, -1) {
				if len(s) > 30 {
					sentences = append(sentences, strings.TrimRight(s, ".!?")+".")
				}
			}
		}
		return nil
	})
	return sentences, tags
}
