package registry

import (
	"context"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"sync"

	"github.com/sirupsen/logrus"
)

// distribution logs through logrus's standard logger (its own logger
// plumbing is an internal package) at Info level for every request, and at
// Error level for every 404, such as the HEAD a client sends before each
// push. For an embedded registry that is noise on the terminal, so Start
// installs a filter on the standard logger that takes distribution's entries
// out and hands them to slog at Debug level, where a slog handler set up for
// debugging still sees them. Entries from anything else using logrus pass
// through unchanged.
var quietMu sync.Mutex

// quietDistributionLogs installs the filter, unless it is already in place.
// It runs at every Start, so that a logrus.SetFormatter done in between is
// wrapped again.
func quietDistributionLogs() {
	quietMu.Lock()
	defer quietMu.Unlock()
	current := logrus.StandardLogger().Formatter
	if _, ok := current.(*distributionFilter); ok {
		return
	}
	if current == nil {
		current = &logrus.TextFormatter{}
	}
	logrus.SetFormatter(&distributionFilter{next: current})
}

// distributionFilter is a logrus.Formatter that diverts distribution's
// entries to slog and formats the others with next.
type distributionFilter struct {
	next logrus.Formatter
}

func (f *distributionFilter) Format(e *logrus.Entry) ([]byte, error) {
	if !fromDistribution(e) {
		return f.next.Format(e)
	}
	logger := slog.Default()
	ctx := context.Background()
	if !logger.Enabled(ctx, slog.LevelDebug) {
		return nil, nil
	}
	attrs := make([]any, 0, 2*len(e.Data)+2)
	attrs = append(attrs, "logrus_level", e.Level.String())
	keys := make([]string, 0, len(e.Data))
	for k := range e.Data {
		if k != "go.version" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		attrs = append(attrs, k, fmt.Sprint(e.Data[k]))
	}
	logger.Log(ctx, slog.LevelDebug, "registry: "+e.Message, attrs...)
	return nil, nil
}

// fromDistribution tells distribution's entries apart. Everything it logs
// through its context loggers carries a "go.version" field (its default
// logger is derived from logrus's standard logger with that field); a few
// storage helpers call logrus directly and are recognised by message.
func fromDistribution(e *logrus.Entry) bool {
	if _, ok := e.Data["go.version"]; ok {
		return true
	}
	for _, p := range distributionMessages {
		if strings.HasPrefix(e.Message, p) {
			return true
		}
	}
	return false
}

var distributionMessages = []string{
	"PurgeUploads starting",
	"Purge uploads finished",
	"Upload files in ",
	"ignoring deleted path",
	"unable to parse offset from upload state path",
}
