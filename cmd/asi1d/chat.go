package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/term"

	"github.com/asi1d/asi1d/cmd/asi1d/cliflag"
	"github.com/asi1d/asi1d/internal/chatclient"
	"github.com/asi1d/asi1d/server"
	"github.com/asi1d/asi1d/server/api"
)

// chatConfig is asi1d chat's configuration: flags, each with an
// ASI1D_CHAT_<NAME> environment variable (a flag on the command line wins).
// The prefix keeps them apart from asi1d serve's, where ASI1D_MODEL is a
// model file and not a model id.
type chatConfig struct {
	URL         string
	Model       string
	APIKey      string
	System      string
	Temperature float64
	MaxTokens   int
	Question    string // one-shot mode: the question from the arguments
}

func chatEnvName(flagName string) string {
	return "ASI1D_CHAT_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

const chatUsage = `Usage: asi1d chat [flags] ["question"]

Talk to an ASI1- or OpenAI-compatible server. With a question (as arguments,
or on standard input when it is not a terminal) it prints only the answer and
exits; without one it starts a conversation:

  Enter sends a line. End a line with \ to continue on the next one, or put
  """ alone on a line to start and end a block of several lines.
  Ctrl-C stops the answer being written; Ctrl-C at an empty prompt again, or
  Ctrl-D, leaves. The reasoning (thought) is shown dimmed before the answer.

  /system TEXT      set the system prompt (/system alone removes it)
  /temperature X    set the temperature (/temperature alone: the server's default)
  /max-tokens N     set max_tokens (/max-tokens alone: the server's default)
  /model [ID]       show the models, or talk to another one
  /clear            forget the conversation
  /help             this list;  /exit leaves

Every flag can also be set as ASI1D_CHAT_<NAME> (e.g. ASI1D_CHAT_URL,
ASI1D_CHAT_API_KEY).

`

// parseChat reads chat's flags and ASI1D_CHAT_* variables; -h prints the
// help to helpOut and returns cliflag.ErrHelp.
func parseChat(args []string, getenv func(string) string, helpOut io.Writer) (*chatConfig, error) {
	c := &chatConfig{}
	cs := cliflag.New("asi1d chat")
	cs.Header, cs.Env = chatUsage, chatEnvName
	fs := cs.FlagSet
	fs.StringVar(&c.URL, "url", "http://127.0.0.1:8080", "server base URL (with or without /v1)")
	fs.StringVar(&c.Model, "model", "", "model id (default: the first of the server's /v1/models)")
	fs.StringVar(&c.APIKey, "api-key", "", "API key, sent as a bearer token")
	fs.StringVar(&c.System, "system", "", "system prompt")
	fs.Float64Var(&c.Temperature, "temperature", -1, "sampling temperature (negative: the server's default)")
	fs.IntVar(&c.MaxTokens, "max-tokens", 0, "most tokens of an answer (0: the server's default)")
	cs.Alias("u", "url")
	cs.Alias("m", "model")
	cs.Alias("s", "system")
	cs.Help("url", "URL", "")
	cs.Help("model", "ID", "")
	cs.Help("api-key", "KEY", "")
	cs.Help("system", "TEXT", "")
	if err := cs.Parse(args, getenv, helpOut); err != nil {
		return nil, err
	}
	c.Question = strings.Join(fs.Args(), " ")
	switch {
	case c.Temperature > 2:
		return nil, fmt.Errorf("--temperature must be at most 2, got %g", c.Temperature)
	case c.MaxTokens < 0:
		return nil, fmt.Errorf("--max-tokens cannot be negative, got %d", c.MaxTokens)
	case c.URL == "":
		return nil, errors.New("--url cannot be empty")
	}
	return c, nil
}

// runChat is asi1d chat; it returns the exit code.
func runChat(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	cfg, err := parseChat(args, getenv, stdout)
	if errors.Is(err, cliflag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(stderr, "asi1d chat: %v\n", err)
		return 2
	}
	s := &chatSession{cfg: cfg, out: stdout, errw: stderr,
		client: chatclient.New(cfg.URL, cfg.APIKey)}
	if cfg.Temperature >= 0 {
		t := cfg.Temperature
		s.temperature = &t
	}
	s.maxTokens = cfg.MaxTokens
	question := cfg.Question
	if question == "" && !isTTY(stdin) {
		b, err := io.ReadAll(stdin)
		if err != nil {
			fmt.Fprintf(stderr, "asi1d chat: read standard input: %v\n", err)
			return 1
		}
		if question = strings.TrimSpace(string(b)); question == "" {
			fmt.Fprintln(stderr, "asi1d chat: no question on standard input")
			return 2
		}
	}
	if question != "" {
		return s.oneShot(ctx, question)
	}
	s.color = isTTY(stdout)
	return s.interactive(ctx, stdin)
}

// isTTY reports whether f is an *os.File on a terminal (x/term's check:
// unlike bench's isTerminal, /dev/null is not one).
func isTTY(f any) bool {
	file, ok := f.(*os.File)
	return ok && term.IsTerminal(int(file.Fd()))
}

// chatSession is one conversation.
type chatSession struct {
	cfg         *chatConfig
	client      *chatclient.Client
	out, errw   io.Writer
	color       bool // ANSI styles on out
	model       string
	temperature *float64
	maxTokens   int           // 0: none
	history     []api.Message // without the system prompt
}

// ANSI styles, used only when out is a terminal.
const (
	styleDim   = "\x1b[2m"
	styleBold  = "\x1b[1m"
	styleReset = "\x1b[0m"
)

func (s *chatSession) style(st, text string) string {
	if !s.color {
		return text
	}
	return st + text + styleReset
}

// resolveModel picks the configured model, or the server's first one.
func (s *chatSession) resolveModel(ctx context.Context) error {
	if s.model != "" {
		return nil
	}
	if s.cfg.Model != "" {
		s.model = s.cfg.Model
		return nil
	}
	ids, err := s.client.Models(ctx)
	if err != nil {
		return err
	}
	s.model = server.DefaultModelID
	if len(ids) > 0 {
		s.model = ids[0]
	}
	return nil
}

func (s *chatSession) request(user string) *api.ChatCompletionRequest {
	var msgs []api.Message
	if s.cfg.System != "" {
		msgs = append(msgs, api.NewMessage(api.RoleSystem, s.cfg.System))
	}
	msgs = append(msgs, s.history...)
	msgs = append(msgs, api.NewMessage(api.RoleUser, user))
	return &api.ChatCompletionRequest{Model: s.model, Messages: msgs, Temperature: s.temperature, MaxTokens: s.maxTokens}
}

// oneShot asks one question and prints only the answer.
func (s *chatSession) oneShot(ctx context.Context, question string) int {
	if err := s.resolveModel(ctx); err != nil {
		fmt.Fprintf(s.errw, "asi1d chat: %v\n", err)
		return 1
	}
	w := bufio.NewWriter(s.out)
	ended := false
	err := s.client.Stream(ctx, s.request(question), func(e chatclient.Event) {
		if e.Content != "" {
			w.WriteString(e.Content)
			ended = strings.HasSuffix(e.Content, "\n")
			w.Flush()
		}
	})
	if !ended {
		w.WriteString("\n")
	}
	w.Flush()
	if ctx.Err() != nil {
		return 130
	}
	if err != nil {
		fmt.Fprintf(s.errw, "asi1d chat: %v\n", err)
		return 1
	}
	return 0
}

// interactive runs the conversation until Ctrl-D, /exit, two Ctrl-C at the
// prompt or SIGTERM. It handles SIGINT itself: the first one stops an
// answer, so the parent ctx (cancelled by main on SIGINT) is not used for
// answers.
func (s *chatSession) interactive(parent context.Context, stdin io.Reader) int {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx := context.WithoutCancel(parent)

	// The reader owns stdin: it ends at end of input (Ctrl-D), a read
	// error, or the next line after this function returns (a blocked
	// terminal read cannot be interrupted; the process ends then anyway).
	lines := make(chan string)
	quit := make(chan struct{})
	defer close(quit)
	go func() {
		defer close(lines)
		r := bufio.NewReader(stdin)
		for {
			l, err := r.ReadString('\n')
			if l != "" || err == nil {
				select {
				case lines <- strings.TrimRight(l, "\r\n"):
				case <-quit:
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()

	mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	err := s.resolveModel(mctx)
	cancel()
	if err != nil {
		fmt.Fprintf(s.errw, "asi1d chat: %v\n", err)
		return 1
	}
	fmt.Fprintf(s.out, "%s\n", s.style(styleDim, fmt.Sprintf("asi1d chat: %s, model %s. /help lists the commands; Ctrl-C stops an answer, Ctrl-D leaves.", s.cfg.URL, s.model)))

	var block []string // lines of a multi-line message so far
	inQuotes := false
	interrupted := false // the last thing at the prompt was a Ctrl-C
	prompt := func() {
		p := "> "
		if block != nil {
			p = ". "
		}
		fmt.Fprint(s.out, s.style(styleBold, p))
	}
	prompt()
	for {
		select {
		case sig := <-sigs:
			if sig == syscall.SIGTERM || interrupted {
				fmt.Fprintln(s.out)
				return 0
			}
			interrupted = true
			block, inQuotes = nil, false
			fmt.Fprintf(s.out, "\n%s\n", s.style(styleDim, "(Ctrl-C again or Ctrl-D to leave)"))
			prompt()
			continue
		case l, ok := <-lines:
			if !ok {
				fmt.Fprintln(s.out)
				return 0
			}
			interrupted = false
			switch {
			case strings.TrimSpace(l) == `"""` && !inQuotes:
				inQuotes = true
				if block == nil {
					block = []string{}
				}
				prompt()
				continue
			case strings.TrimSpace(l) == `"""`:
				inQuotes = false // the block ends: send it
			case inQuotes:
				block = append(block, l)
				prompt()
				continue
			case strings.HasSuffix(l, `\`):
				block = append(block, strings.TrimSuffix(l, `\`))
				prompt()
				continue
			default:
				block = append(block, l)
			}
			text := strings.Join(block, "\n")
			block = nil
			if strings.TrimSpace(text) == "" {
				prompt()
				continue
			}
			if strings.HasPrefix(text, "/") && !strings.Contains(text, "\n") {
				if s.command(ctx, text) {
					return 0
				}
				prompt()
				continue
			}
			if s.answer(ctx, text, sigs) {
				return 0
			}
			prompt()
		}
	}
}

// command runs a /command; it returns true to leave.
func (s *chatSession) command(ctx context.Context, line string) (leave bool) {
	name, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	arg = strings.TrimSpace(arg)
	note := func(format string, a ...any) {
		fmt.Fprintln(s.out, s.style(styleDim, fmt.Sprintf(format, a...)))
	}
	switch name {
	case "/exit", "/quit":
		return true
	case "/help":
		fmt.Fprint(s.out, chatUsage[strings.Index(chatUsage, "  Enter"):strings.Index(chatUsage, "Every flag")])
	case "/clear":
		s.history = nil
		note("(conversation cleared)")
	case "/system":
		s.cfg.System = arg
		if arg == "" {
			note("(no system prompt)")
		} else {
			note("(system prompt set)")
		}
	case "/temperature":
		if arg == "" {
			s.temperature = nil
			note("(temperature: the server's default)")
			break
		}
		t, err := strconv.ParseFloat(arg, 64)
		if err != nil || t < 0 || t > 2 {
			note("(temperature must be a number from 0 to 2)")
			break
		}
		s.temperature = &t
		note("(temperature %g)", t)
	case "/max-tokens":
		if arg == "" {
			s.maxTokens = 0
			note("(max_tokens: the server's default)")
			break
		}
		n, err := strconv.Atoi(arg)
		if err != nil || n < 1 {
			note("(max-tokens must be a positive integer)")
			break
		}
		s.maxTokens = n
		note("(max_tokens %d)", n)
	case "/model":
		if arg != "" {
			s.model = arg
			note("(model %s)", arg)
			break
		}
		ids, err := s.client.Models(ctx)
		if err != nil {
			note("(%v)", err)
			break
		}
		for _, id := range ids {
			mark := "  "
			if id == s.model {
				mark = "* "
			}
			fmt.Fprintln(s.out, mark+id)
		}
	default:
		note("(unknown command %s; /help lists them)", name)
	}
	return false
}

// answer streams the answer to text; SIGINT on sigs stops it, SIGTERM
// stops it and returns true (leave).
func (s *chatSession) answer(ctx context.Context, text string, sigs <-chan os.Signal) (leave bool) {
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	events := make(chan chatclient.Event)
	done := make(chan error, 1)
	go func() {
		done <- s.client.Stream(actx, s.request(text), func(e chatclient.Event) {
			select {
			case events <- e:
			case <-actx.Done():
			}
		})
	}()

	var content strings.Builder
	var usage *api.Usage
	var finish string
	mode := "" // what was written last: "", "thought", "content", "tool"
	t0 := time.Now()
	var tFirst time.Time
	switchTo := func(m string) {
		if mode == m {
			return
		}
		if mode != "" {
			fmt.Fprint(s.out, "\n\n")
		}
		if m == "thought" && !s.color {
			fmt.Fprint(s.out, "(thinking) ")
		}
		mode = m
	}
	var err error
	stopped := false
loop:
	for {
		select {
		case sig := <-sigs:
			leave = sig == syscall.SIGTERM
			stopped = true
			cancel()
			err = <-done
			break loop
		case err = <-done:
			break loop
		case e := <-events:
			if tFirst.IsZero() && (e.Thought != "" || e.Content != "" || e.ToolCall != nil) {
				tFirst = time.Now()
			}
			switch {
			case e.Thought != "":
				switchTo("thought")
				fmt.Fprint(s.out, s.style(styleDim, e.Thought))
			case e.ToolThought != "":
				switchTo("tool")
				fmt.Fprint(s.out, s.style(styleDim, "[tool thought] "+e.ToolThought))
			case e.Content != "":
				switchTo("content")
				fmt.Fprint(s.out, e.Content)
				content.WriteString(e.Content)
			case e.ToolCall != nil:
				switchTo("tool")
				fmt.Fprint(s.out, s.style(styleBold, fmt.Sprintf("[tool call %s] ", e.ToolCall.ID)))
				fmt.Fprint(s.out, e.ToolCall.Function.Name+e.ToolCall.Function.Arguments)
			case e.Finish != "":
				finish = e.Finish
			case e.Usage != nil:
				usage = e.Usage
			}
		}
	}
	fmt.Fprintln(s.out)
	switch {
	case stopped:
		fmt.Fprintln(s.out, s.style(styleDim, "[stopped]"))
	case err != nil:
		fmt.Fprintln(s.out, s.style(styleDim, "error: "+err.Error()))
		return leave // the question is not kept: the server did not answer it
	default:
		fmt.Fprintln(s.out, s.style(styleDim, stats(t0, tFirst, time.Now(), usage, finish)))
	}
	s.history = append(s.history,
		api.NewMessage(api.RoleUser, text),
		api.NewMessage(api.RoleAssistant, content.String()))
	return leave
}

// stats is the line under an answer: tokens, speed, time to first token.
func stats(t0, first, end time.Time, u *api.Usage, finish string) string {
	var parts []string
	if u != nil {
		parts = append(parts, fmt.Sprintf("%d tokens", u.CompletionTokens))
		if !first.IsZero() && u.CompletionTokens > 1 && end.After(first) {
			parts = append(parts, fmt.Sprintf("%.1f tok/s", float64(u.CompletionTokens-1)/end.Sub(first).Seconds()))
		}
	}
	if !first.IsZero() {
		parts = append(parts, fmt.Sprintf("first token %d ms", first.Sub(t0).Milliseconds()))
	}
	if finish != "" && finish != "stop" {
		parts = append(parts, "finish "+finish)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}
