package registry

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
)

// distribution logs through the process-wide logrus standard logger and
// offers no per-instance logger, so every Server shares one hook. The hook
// discards everything unless some running Server was given a Logger; then
// entries go to the most recently started one.
var logs struct {
	once    sync.Once
	mu      sync.Mutex
	loggers []*slog.Logger
}

type slogHook struct{}

func (slogHook) Levels() []logrus.Level { return logrus.AllLevels }

func (slogHook) Fire(e *logrus.Entry) error {
	logs.mu.Lock()
	var l *slog.Logger
	if n := len(logs.loggers); n > 0 {
		l = logs.loggers[n-1]
	}
	logs.mu.Unlock()
	if l == nil {
		return nil
	}
	attrs := make([]slog.Attr, 0, len(e.Data))
	for k, v := range e.Data {
		if k == "go.version" {
			continue
		}
		attrs = append(attrs, slog.Any(k, v))
	}
	ctx := e.Context
	if ctx == nil {
		ctx = context.Background()
	}
	level := slogLevel(e.Level)
	if level > slog.LevelDebug && notFound(e.Data) {
		// A client asking for what the registry lacks (a HEAD before
		// every upload) is routine, not an error.
		level = slog.LevelDebug
	}
	l.LogAttrs(ctx, level, e.Message, attrs...)
	return nil
}

// notFound reports whether a log entry is about a request answered 404:
// an unknown blob, manifest or repository.
func notFound(d logrus.Fields) bool {
	if v, ok := d["http.response.status"]; ok && fmt.Sprint(v) == "404" {
		return true
	}
	if v, ok := d["err.code"]; ok {
		switch strings.ToLower(fmt.Sprint(v)) {
		case "blob unknown", "manifest unknown", "name unknown", "blob_unknown", "manifest_unknown", "name_unknown":
			return true
		}
	}
	return false
}

func slogLevel(l logrus.Level) slog.Level {
	switch l {
	case logrus.TraceLevel, logrus.DebugLevel:
		return slog.LevelDebug
	case logrus.InfoLevel:
		return slog.LevelInfo
	case logrus.WarnLevel:
		return slog.LevelWarn
	default:
		return slog.LevelError
	}
}

// captureLogs silences logrus output and, when l is non-nil, routes it to l.
func captureLogs(l *slog.Logger) {
	logs.once.Do(func() {
		logrus.SetOutput(io.Discard)
		logrus.AddHook(slogHook{})
	})
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if l != nil {
		logs.loggers = append(logs.loggers, l)
	}
	setLevelLocked()
}

// releaseLogs undoes captureLogs(l) when its Server stops.
func releaseLogs(l *slog.Logger) {
	if l == nil {
		return
	}
	logs.mu.Lock()
	defer logs.mu.Unlock()
	for i := len(logs.loggers) - 1; i >= 0; i-- {
		if logs.loggers[i] == l {
			logs.loggers = append(logs.loggers[:i], logs.loggers[i+1:]...)
			break
		}
	}
	setLevelLocked()
}

// setLevelLocked keeps logrus from formatting entries nobody will read.
func setLevelLocked() {
	if len(logs.loggers) == 0 {
		logrus.SetLevel(logrus.PanicLevel)
		return
	}
	logrus.SetLevel(logrus.InfoLevel)
}
