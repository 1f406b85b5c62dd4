package web_test

import (
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/runnel/runnel"
)

// TestJSStatusesMatchGo keeps the JS client's table of error codes and HTTP
// statuses the same as runnel.Statuses, row for row and in order.
func TestJSStatusesMatchGo(t *testing.T) {
	src, err := os.ReadFile("client/runnel.js")
	if err != nil {
		t.Fatal(err)
	}
	block := regexp.MustCompile(`(?s)export const STATUSES = Object\.freeze\(\[(.*?)\]\);`).FindSubmatch(src)
	if block == nil {
		t.Fatal("client/runnel.js has no `export const STATUSES = Object.freeze([...]);` table")
	}
	var js []runnel.CodeStatus
	for _, m := range regexp.MustCompile(`\['([a-z_]+)',\s*(\d+)\]`).FindAllSubmatch(block[1], -1) {
		n, _ := strconv.Atoi(string(m[2]))
		js = append(js, runnel.CodeStatus{Code: string(m[1]), Status: n})
	}
	if rows := strings.Count(string(block[1]), "["); rows != len(js) {
		t.Fatalf("parsed %d of the %d rows of the JS table; keep each row as ['code', status]", len(js), rows)
	}
	if len(js) != len(runnel.Statuses) {
		t.Errorf("the JS table has %d rows, runnel.Statuses %d", len(js), len(runnel.Statuses))
	}
	for i := range min(len(js), len(runnel.Statuses)) {
		if js[i] != runnel.Statuses[i] {
			t.Errorf("row %d: JS %v, Go %v", i, js[i], runnel.Statuses[i])
		}
	}
}
