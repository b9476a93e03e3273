package main

// Output formatting shared by every command, following the Docker CLI's
// formatter: --format takes "table" (the default), "table TEMPLATE", "json"
// (one JSON object per line) or a Go template applied to each row. Tables are
// aligned with text/tabwriter (minimum width 10, padding 3) and take their
// header from the same template run over the column titles.

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"

	"github.com/spf13/pflag"
)

const (
	tableFormatKey = "table"
	jsonFormatKey  = "json"
	jsonTemplate   = "{{json .}}"
	quietTemplate  = "{{.ID}}"
)

const listFormatHelp = `Format output using a custom template:
'table':            Print output in table format with column headers (default)
'table TEMPLATE':   Print output in table format using the given Go template
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template`

const inspectFormatHelp = `Format output using a custom template:
'json':             Print in JSON format
'TEMPLATE':         Print output using the given Go template`

func addListFormatFlag(flags *pflag.FlagSet, p *string) {
	flags.StringVar(p, "format", "", listFormatHelp)
}

// listing describes how one kind of object is listed by an `ls`-like command.
// Rows are structs whose exported fields are what templates can use.
type listing struct {
	table   string            // the default "table ..." template
	headers map[string]string // column title for each row field
}

// template returns the template to render for the --format and -q flags.
func (l listing) template(format string, quiet bool) string {
	switch format {
	case "", tableFormatKey:
		if quiet {
			return quietTemplate
		}
		return l.table
	}
	return format
}

// writeListing renders rows with the --format and -q flags.
func writeListing[T any](w io.Writer, l listing, format string, quiet bool, rows []T) error {
	text, isTable := templateText(l.template(format, quiet))
	tmpl, err := parseTemplate(text, templateFuncs)
	if err != nil {
		return err
	}
	var body bytes.Buffer
	for _, row := range rows {
		if err := tmpl.Execute(&body, row); err != nil {
			return fmt.Errorf("template parsing error: %w", err)
		}
		body.WriteByte('\n')
	}
	if !isTable {
		_, err := body.WriteTo(w)
		return err
	}

	tw := tabwriter.NewWriter(w, 10, 1, 3, ' ', 0)
	var header bytes.Buffer
	if htmpl, err := parseTemplate(text, headerFuncs); err == nil {
		// As in Docker, a header the template cannot render (say,
		// {{json .}}) is printed as far as it got.
		_ = htmpl.Execute(&header, l.headers)
	}
	header.WriteByte('\n')
	if _, err := header.WriteTo(tw); err != nil {
		return err
	}
	if _, err := body.WriteTo(tw); err != nil {
		return err
	}
	return tw.Flush()
}

// templateText turns a --format value into template text, saying whether it
// is a table. The escapes \t and \n may be typed literally.
func templateText(format string) (text string, isTable bool) {
	switch {
	case strings.HasPrefix(format, tableFormatKey):
		text, isTable = format[len(tableFormatKey):], true
	case format == jsonFormatKey:
		text = jsonTemplate
	default:
		text = format
	}
	text = strings.Trim(text, " ")
	return strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(text), isTable
}

func parseTemplate(text string, funcs template.FuncMap) (*template.Template, error) {
	tmpl, err := template.New("").Funcs(funcs).Parse(text)
	if err != nil {
		return nil, fmt.Errorf("template parsing error: %w", err)
	}
	return tmpl, nil
}

// templateFuncs are the functions every --format template can call.
var templateFuncs = template.FuncMap{
	"json":     jsonString,
	"join":     strings.Join,
	"lower":    strings.ToLower,
	"upper":    strings.ToUpper,
	"title":    titleCase,
	"truncate": truncate,
}

// headerFuncs stand in for templateFuncs when a table's header is rendered
// from the column titles: they leave the titles as they are.
var headerFuncs = template.FuncMap{
	"json":     func(v string) string { return v },
	"join":     func(v string, _ string) string { return v },
	"lower":    func(v string) string { return v },
	"upper":    func(v string) string { return v },
	"title":    func(v string) string { return v },
	"truncate": func(v string, _ int) string { return v },
}

func jsonString(v any) (string, error) {
	b, err := marshalJSON(v)
	return string(b), err
}

// marshalJSON encodes v without escaping <, > and &, as Docker's json does.
func marshalJSON(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// marshalRow encodes a row struct as a JSON object with its fields in
// alphabetical order, the shape of Docker's `--format json` lines. Row types
// call it from their MarshalJSON.
func marshalRow(row any) ([]byte, error) {
	v := reflect.ValueOf(row)
	if v.Kind() != reflect.Struct {
		return nil, fmt.Errorf("marshalRow: %T is not a struct", row)
	}
	fields := make(map[string]any, v.NumField())
	for i := range v.NumField() {
		if f := v.Type().Field(i); f.IsExported() {
			fields[f.Name] = v.Field(i).Interface()
		}
	}
	return marshalJSON(fields)
}

func titleCase(s string) string {
	b := []byte(s)
	start := true
	for i, c := range b {
		if start && 'a' <= c && c <= 'z' {
			b[i] = c - 'a' + 'A'
		}
		start = c == ' ' || c == '\t' || c == '\n' || c == '-' || c == '_'
	}
	return string(b)
}

func truncate(s string, n int) string {
	if len(s) < n {
		return s
	}
	return s[:n]
}

// writeInspect prints objects as `docker inspect` does: by default an
// indented JSON array, for "json" a compact one, otherwise the template's
// output for each object on its own line.
func writeInspect[T any](w io.Writer, format string, items []T) error {
	switch format {
	case "":
		if len(items) == 0 {
			_, err := io.WriteString(w, "[]\n")
			return err
		}
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		enc.SetIndent("", "    ")
		if err := enc.Encode(items); err != nil {
			return err
		}
		_, err := buf.WriteTo(w)
		return err
	case jsonFormatKey:
		if items == nil {
			items = []T{}
		}
		b, err := marshalJSON(items)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "%s\n", b)
		return err
	}

	tmpl, err := parseTemplate(format, templateFuncs)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	var errs []error
	for _, item := range items {
		var one bytes.Buffer
		if err := tmpl.Execute(&one, item); err != nil {
			errs = append(errs, fmt.Errorf("template parsing error: %w", err))
			continue
		}
		buf.Write(one.Bytes())
		buf.WriteByte('\n')
	}
	if buf.Len() == 0 {
		buf.WriteByte('\n')
	}
	if _, err := buf.WriteTo(w); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// writeTemplate renders one object with a --format value ("json" or a
// template) followed by a newline, as `docker info --format` does.
func writeTemplate(w io.Writer, format string, v any) error {
	if format == jsonFormatKey {
		format = jsonTemplate
	}
	tmpl, err := parseTemplate(format, templateFuncs)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := tmpl.Execute(&buf, v); err != nil {
		return fmt.Errorf("template parsing error: %w", err)
	}
	buf.WriteByte('\n')
	_, err = buf.WriteTo(w)
	return err
}

// prettyPrint capitalises the first letter and lowers the rest, the way
// Docker turns API values such as "ready" into table cells ("Ready").
func prettyPrint(s string) string {
	switch len(s) {
	case 0:
		return s
	case 1:
		return strings.ToLower(s)
	}
	return strings.ToUpper(s[:1]) + strings.ToLower(s[1:])
}

// humanDuration writes d in words, with the thresholds Docker uses for
// "Up 5 minutes" and "Expiry Duration: 3 months".
func humanDuration(d time.Duration) string {
	seconds := int(d.Seconds())
	minutes := int(d.Minutes())
	hours := int(d.Hours() + 0.5)
	switch {
	case seconds < 1:
		return "Less than a second"
	case seconds == 1:
		return "1 second"
	case seconds < 60:
		return fmt.Sprintf("%d seconds", seconds)
	case minutes == 1:
		return "About a minute"
	case minutes < 60:
		return fmt.Sprintf("%d minutes", minutes)
	case hours == 1:
		return "About an hour"
	case hours < 48:
		return fmt.Sprintf("%d hours", hours)
	case hours < 24*7*2:
		return fmt.Sprintf("%d days", hours/24)
	case hours < 24*30*2:
		return fmt.Sprintf("%d weeks", hours/24/7)
	case hours < 24*365*2:
		return fmt.Sprintf("%d months", hours/24/30)
	}
	return fmt.Sprintf("%d years", int(d.Hours())/24/365)
}

// naturalLess orders strings with runs of digits compared by value, so
// node-2 comes before node-10, as Docker sorts node and service names.
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		if isDigit(a[0]) && isDigit(b[0]) {
			da, db := digitRun(a), digitRun(b)
			na, nb := strings.TrimLeft(da, "0"), strings.TrimLeft(db, "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			if len(da) != len(db) {
				return len(da) < len(db)
			}
			a, b = a[len(da):], b[len(db):]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

func digitRun(s string) string {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return s[:i]
}
