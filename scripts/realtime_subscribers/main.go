// Command realtime-subscribers is the lean subscriber side of scripts/bench_realtime.py.
//
// It opens N WebSocket connections to Centrifugo, connects and subscribes each with
// the tokens the gateway's POST /v1/realtime/token hands out (read from a JSON file
// the driver writes, or fetched from the endpoint itself), and timestamps every
// publication it receives. Latency is the receive wall-clock time minus the
// document's "sent_ns" field (wall clock ns set by the writer on the same machine),
// so no clock sync is involved. It exists because Python subscribers at 1,000
// connections spend more CPU than Centrifugo and the gateway together, and the
// figure then measures the load generator, not the platform.
//
// The hot path only copies a timestamp and scans two fields out of each frame;
// everything else (percentiles, per-event aggregation) happens after the run.
//
// Protocol: one line {"event":"ready",...} on stdout once every connection is
// subscribed, then one JSON result object on stdout when every connection has
// received -expect publications, a "stop" line arrives on stdin, or -timeout passes.
// Progress and errors go to stderr; tokens are never printed.
package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
)

// grant is one channel of a token response; token is set when Centrifugo needs a subscription token.
type grant struct {
	Channel string  `json:"channel"`
	Token   *string `json:"token"`
}

// tokenResponse is the body of POST /v1/realtime/token (the fields used here).
type tokenResponse struct {
	URL      string  `json:"url"`
	Token    string  `json:"token"`
	Channels []grant `json:"channels"`
}

// tokenFile is what the driver writes: the WebSocket URL and one token response per connection.
type tokenFile struct {
	URL     string          `json:"url"`
	Clients []tokenResponse `json:"clients"`
}

// sample is one delivery: which write (by its sent_ns), its phase, and the receive time.
type sample struct {
	sentNs int64
	recvNs int64
	phase  string
}

type conn struct {
	ws      *websocket.Conn
	samples []sample
	got     int
	stale   int
	err     error
}

type reply struct {
	ID    int             `json:"id"`
	Error json.RawMessage `json:"error"`
}

var (
	keySent  = []byte(`"sent_ns":`)
	keyPhase = []byte(`"phase":`)
	keyPush  = []byte(`"push"`)
)

func main() {
	tokensPath := flag.String("tokens", "", "JSON file {url, clients:[token response,...]} written by the driver")
	tokenURL := flag.String("token-url", "", "instead of -tokens: POST this gateway URL (/v1/realtime/token) once per connection")
	bearerEnv := flag.String("bearer-env", "TELESTACK_BENCH_BEARER", "env var holding the bearer for -token-url")
	channel := flag.String("channel", "", "with -token-url: ask the gateway for this channel only")
	n := flag.Int("n", 0, "with -token-url: number of connections")
	wsURL := flag.String("url", "", "WebSocket URL (default: from the token file / token response)")
	expect := flag.Int("expect", 0, "publications each connection waits for before the run ends (0: until stop)")
	timeout := flag.Duration("timeout", 5*time.Minute, "give up and report what arrived after this long")
	procs := flag.Int("procs", 1, "GOMAXPROCS: leave the other cores to Centrifugo and the gateway")
	dial := flag.Int("dial-concurrency", 64, "connections being opened at once")
	flag.Parse()
	runtime.GOMAXPROCS(*procs)

	clients, url, err := loadTokens(*tokensPath, *tokenURL, *bearerEnv, *channel, *n)
	if err != nil {
		fatal(err)
	}
	if *wsURL != "" {
		url = *wsURL
	}
	if url == "" || len(clients) == 0 {
		fatal(errors.New("no WebSocket URL or no clients"))
	}

	start := time.Now()
	conns := make([]*conn, len(clients))
	var wg sync.WaitGroup
	sem := make(chan struct{}, *dial)
	var failed, retries atomic.Int64
	var firstErr atomic.Value
	for i := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := open(url, clients[i])
			for attempt := 0; err != nil && attempt < 4; attempt++ { // a loaded box may drop a handshake
				retries.Add(1)
				time.Sleep(time.Duration(100<<attempt) * time.Millisecond)
				c, err = open(url, clients[i])
			}
			if err != nil {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
				return
			}
			conns[i] = c
		}(i)
	}
	wg.Wait()
	if f := failed.Load(); f > 0 {
		fatal(fmt.Errorf("%d of %d connections failed; first: %v", f, len(clients), firstErr.Load()))
	}
	readyNs := time.Now().UnixNano() // events written before this are stale (left in the outbox earlier)
	ready, _ := json.Marshal(map[string]any{
		"event": "ready", "connections": len(conns), "setup_ms": ms(time.Since(start).Nanoseconds()),
		"dial_retries": retries.Load(),
	})
	fmt.Println(string(ready))

	var done sync.WaitGroup
	var finished atomic.Int64
	allDone := make(chan struct{})
	for _, c := range conns {
		done.Add(1)
		go func(c *conn) {
			defer done.Done()
			c.read(*expect, readyNs, func() {
				if finished.Add(1) == int64(len(conns)) {
					close(allDone)
				}
			})
		}(c)
	}
	stop := make(chan struct{})
	go func() { // the driver may end the run early with a "stop" line (EOF alone does not: /dev/null stdin)
		r := bufio.NewReader(os.Stdin)
		for {
			line, err := r.ReadString('\n')
			if strings.HasPrefix(line, "stop") {
				close(stop)
				return
			}
			if err != nil {
				return
			}
		}
	}()
	reason := "complete"
	if *expect <= 0 {
		allDone = nil // wait for stop or timeout
	}
	select {
	case <-allDone:
	case <-stop:
		reason = "stopped"
	case <-time.After(*timeout):
		reason = "timeout"
	}
	for _, c := range conns { // unblock the readers; their samples stay
		_ = c.ws.SetReadDeadline(time.Now())
	}
	done.Wait()
	for _, c := range conns {
		_ = c.ws.Close()
	}
	res := report(conns, reason)
	var ru syscall.Rusage // the load generator's own cost, so a reader can tell it from the platform's
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) == nil {
		res["cpu_s"] = float64(ru.Utime.Nano()+ru.Stime.Nano()) / 1e9
	}
	res["wall_s"] = time.Since(start).Seconds()
	out, _ := json.Marshal(res)
	fmt.Println(string(out))
}

func fatal(err error) {
	fmt.Fprintln(os.Stderr, "realtime-subscribers:", err)
	os.Exit(1)
}

func loadTokens(path, tokenURL, bearerEnv, channel string, n int) ([]tokenResponse, string, error) {
	if path != "" {
		raw, err := os.ReadFile(path)
		if err != nil {
			return nil, "", err
		}
		var f tokenFile
		if err := json.Unmarshal(raw, &f); err != nil {
			return nil, "", fmt.Errorf("token file: %w", err)
		}
		return f.Clients, f.URL, nil
	}
	if tokenURL == "" || n <= 0 {
		return nil, "", errors.New("give -tokens FILE, or -token-url URL with -n N")
	}
	body := []byte("{}")
	if channel != "" {
		body, _ = json.Marshal(map[string]any{"channels": []string{channel}})
	}
	httpc := &http.Client{Timeout: 10 * time.Second}
	out := make([]tokenResponse, n)
	url := ""
	for i := range out {
		req, _ := http.NewRequest(http.MethodPost, tokenURL, bytes.NewReader(body))
		req.Header.Set("content-type", "application/json")
		req.Header.Set("authorization", "Bearer "+os.Getenv(bearerEnv))
		resp, err := httpc.Do(req)
		if err != nil {
			return nil, "", fmt.Errorf("token endpoint: %w", err)
		}
		raw, _ := io.ReadAll(resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, "", fmt.Errorf("token endpoint answered HTTP %d", resp.StatusCode)
		}
		if err := json.Unmarshal(raw, &out[i]); err != nil {
			return nil, "", fmt.Errorf("token endpoint: %w", err)
		}
		url = out[i].URL
	}
	return out, url, nil
}

// open dials, connects and subscribes to every granted channel, waiting for each reply.
func open(url string, t tokenResponse) (*conn, error) {
	d := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 16 << 10, WriteBufferSize: 4 << 10}
	ws, _, err := d.Dial(url, http.Header{"Origin": []string{"http://127.0.0.1"}})
	if err != nil {
		return nil, fmt.Errorf("dial: %w", err)
	}
	c := &conn{ws: ws}
	cmds := []map[string]any{{"id": 1, "connect": map[string]any{"token": t.Token, "name": "bench"}}}
	for i, g := range t.Channels {
		sub := map[string]any{"channel": g.Channel}
		if g.Token != nil {
			sub["token"] = *g.Token
		}
		cmds = append(cmds, map[string]any{"id": i + 2, "subscribe": sub})
	}
	var frame bytes.Buffer
	for i, cmd := range cmds { // one frame, newline-delimited commands (Centrifugo JSON protocol)
		if i > 0 {
			frame.WriteByte('\n')
		}
		b, _ := json.Marshal(cmd)
		frame.Write(b)
	}
	if err := ws.WriteMessage(websocket.TextMessage, frame.Bytes()); err != nil {
		_ = ws.Close()
		return nil, fmt.Errorf("send connect: %w", err)
	}
	_ = ws.SetReadDeadline(time.Now().Add(30 * time.Second))
	pending := len(cmds)
	for pending > 0 {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			_ = ws.Close()
			return nil, fmt.Errorf("connect/subscribe reply: %w", err)
		}
		for _, line := range bytes.Split(msg, []byte("\n")) {
			if len(line) == 0 {
				continue
			}
			var r reply
			if err := json.Unmarshal(line, &r); err != nil {
				_ = ws.Close()
				return nil, fmt.Errorf("reply: %w", err)
			}
			if r.ID == 0 {
				continue // a push before the last reply (none expected yet)
			}
			if len(r.Error) > 0 && string(r.Error) != "null" {
				_ = ws.Close()
				return nil, fmt.Errorf("command %d refused: %s", r.ID, r.Error)
			}
			pending--
		}
	}
	_ = ws.SetReadDeadline(time.Time{})
	return c, nil
}

// read records every publication until expect have arrived (then calls finished once) or the read fails.
func (c *conn) read(expect int, since int64, finished func()) {
	signalled := false
	var buf bytes.Buffer // reused: no allocation per frame on the hot path
	for {
		_, r, err := c.ws.NextReader()
		now := time.Now().UnixNano()
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		msg := buf.Bytes()
		if err != nil {
			var ne interface{ Timeout() bool }
			if !errors.As(err, &ne) || !ne.Timeout() {
				c.err = err
			}
			if !signalled {
				finished() // a dead connection must not hold the run open
			}
			return
		}
		for len(msg) > 0 {
			line := msg
			if i := bytes.IndexByte(msg, '\n'); i >= 0 {
				line, msg = msg[:i], msg[i+1:]
			} else {
				msg = nil
			}
			if len(line) == 0 {
				continue
			}
			if len(line) == 2 && line[0] == '{' && line[1] == '}' { // server ping: pong
				if err := c.ws.WriteMessage(websocket.TextMessage, []byte("{}")); err != nil {
					c.err = err
				}
				continue
			}
			if !bytes.Contains(line, keyPush) {
				continue
			}
			sent, phase, ok := scan(line)
			if !ok {
				continue
			}
			if sent < since { // published late from an earlier run's outbox backlog: not this run's write
				c.stale++
				continue
			}
			c.samples = append(c.samples, sample{sentNs: sent, recvNs: now, phase: phase})
			c.got++
			if expect > 0 && c.got == expect && !signalled {
				signalled = true
				finished()
			}
		}
	}
}

// scan pulls sent_ns and phase out of a publication without a full JSON decode.
func scan(line []byte) (int64, string, bool) {
	i := bytes.Index(line, keySent)
	if i < 0 {
		return 0, "", false
	}
	rest := line[i+len(keySent):]
	rest = bytes.TrimLeft(rest, " ")
	j, k := 0, 0
	for k < len(rest) && rest[k] >= '0' && rest[k] <= '9' {
		k++
	}
	sent, err := strconv.ParseInt(string(rest[j:k]), 10, 64)
	if err != nil {
		return 0, "", false
	}
	phase := ""
	if p := bytes.Index(line, keyPhase); p >= 0 {
		r := bytes.TrimLeft(line[p+len(keyPhase):], " ")
		if len(r) > 0 && r[0] == '"' {
			if q := bytes.IndexByte(r[1:], '"'); q >= 0 {
				phase = string(r[1 : q+1])
			}
		}
	}
	return sent, phase, true
}

// stats are latency figures in milliseconds over a set of deliveries.
type stats struct {
	Deliveries int     `json:"deliveries"`
	P50        float64 `json:"p50_ms"`
	P99        float64 `json:"p99_ms"`
	Max        float64 `json:"max_ms"`
}

type eventStats struct {
	SentNs int64  `json:"sent_ns"`
	Phase  string `json:"phase"`
	stats
	First float64 `json:"first_ms"`
}

type phaseStats struct {
	Events int `json:"events"`
	stats
	// per write, the earliest subscriber: the server path without the fan-out wait
	FirstP50 float64 `json:"first_p50_ms"`
	FirstP99 float64 `json:"first_p99_ms"`
	// per write, the p99 over its subscribers: the fan-out spread
	EventP99P50 float64 `json:"event_p99_p50_ms"`
	EventP99Max float64 `json:"event_p99_max_ms"`
	// deliveries / (last delivery - first write sent)
	EventsPerS float64 `json:"events_per_s"`
	FirstSent  int64   `json:"first_sent_ns"`
	LastRecv   int64   `json:"last_recv_ns"`
}

func report(conns []*conn, reason string) map[string]any {
	byEvent := map[int64][]float64{}
	phaseOf := map[int64]string{}
	lastRecv := map[string]int64{}
	errs, stale := 0, 0
	for _, c := range conns {
		if c.err != nil {
			errs++
		}
		stale += c.stale
		for _, s := range c.samples {
			byEvent[s.sentNs] = append(byEvent[s.sentNs], ms(s.recvNs-s.sentNs))
			phaseOf[s.sentNs] = s.phase
			if s.recvNs > lastRecv[s.phase] {
				lastRecv[s.phase] = s.recvNs
			}
		}
	}
	keys := make([]int64, 0, len(byEvent))
	for k := range byEvent {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(a, b int) bool { return keys[a] < keys[b] })
	events := make([]eventStats, 0, len(keys))
	all := map[string][]float64{}
	firsts := map[string][]float64{}
	p99s := map[string][]float64{}
	firstSent := map[string]int64{}
	for _, k := range keys {
		lat := byEvent[k]
		sort.Float64s(lat)
		ph := phaseOf[k]
		st := summarize(lat)
		events = append(events, eventStats{SentNs: k, Phase: ph, stats: st, First: lat[0]})
		all[ph] = append(all[ph], lat...)
		all[""] = append(all[""], lat...)
		firsts[ph] = append(firsts[ph], lat[0])
		p99s[ph] = append(p99s[ph], st.P99)
		if _, ok := firstSent[ph]; !ok {
			firstSent[ph] = k
		}
	}
	phases := map[string]phaseStats{}
	for ph, lat := range all {
		if ph == "" {
			continue
		}
		sort.Float64s(lat)
		sort.Float64s(firsts[ph])
		sort.Float64s(p99s[ph])
		span := float64(lastRecv[ph]-firstSent[ph]) / 1e9
		eps := 0.0
		if span > 0 {
			eps = float64(len(lat)) / span
		}
		phases[ph] = phaseStats{
			Events: len(firsts[ph]), stats: summarize(lat),
			FirstP50: pct(firsts[ph], 0.50), FirstP99: pct(firsts[ph], 0.99),
			EventP99P50: pct(p99s[ph], 0.50), EventP99Max: p99s[ph][len(p99s[ph])-1],
			EventsPerS: eps, FirstSent: firstSent[ph], LastRecv: lastRecv[ph],
		}
	}
	overall := all[""]
	sort.Float64s(overall)
	return map[string]any{
		"event": "result", "reason": reason, "connections": len(conns), "connection_errors": errs,
		"stale_deliveries": stale,
		"overall":          summarize(overall), "phases": phases, "per_event": events,
	}
}

func summarize(sorted []float64) stats {
	if len(sorted) == 0 {
		return stats{}
	}
	return stats{Deliveries: len(sorted), P50: pct(sorted, 0.50), P99: pct(sorted, 0.99), Max: sorted[len(sorted)-1]}
}

// pct is the nearest-rank percentile of sorted values (same rule as the Python driver).
func pct(sorted []float64, q float64) float64 {
	if len(sorted) == 0 {
		return 0
	}
	i := int(q*float64(len(sorted)-1) + 0.5)
	if i >= len(sorted) {
		i = len(sorted) - 1
	}
	return sorted[i]
}

func ms(ns int64) float64 { return float64(ns) / 1e6 }
