// Package runnel answers questions about a collection of articles and
// streams the answer while it is produced.
//
// The root package is the domain: articles and passages, the events of the
// streaming protocol, the errors users see, and the pipeline that turns a
// question into a stream of events. A question may come with the
// conversation before it (ParseConversation): a follow-up is searched in the
// light of the earlier turns, by a rule of words or by a Rewriter. It
// imports only the standard library.
//
// Adapters live in sub-packages named for what they wrap and implement the
// interfaces declared here:
//
//	sqlite/      Store on embedded SQLite with FTS5
//	markdown/    Markdown and JSONL files to Articles, and the importer
//	extractive/  the offline Generator
//	openai/      the Generator (and Rewriter) for any OpenAI-compatible LLM server
//	http/        the HTTP server (NDJSON over chunked HTTP/1.1) and the Go client
//	web/         the web page, article pages and the JS client
//	corpus/      the default articles embedded in the binary
//	cmd/runnel/  the program that wires them together
package runnel
