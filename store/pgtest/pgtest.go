// Package pgtest runs one private PostgreSQL server per test binary and gives
// each test its own database, cloned from a migrated template so a test pays
// for CREATE DATABASE, not for migrations.
//
// The server comes from the machine's PostgreSQL binaries (initdb, pg_ctl),
// listens only on 127.0.0.1 and a socket in a temporary directory, and runs
// with fsync off: test data is thrown away with the directory.
package pgtest

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/ferrycf/ferry/store"
)

const templateDB = "ferry_template"

// Server is a running private PostgreSQL server.
type Server struct {
	dir     string
	binDir  string
	port    int
	cred    *syscall.Credential
	counter atomic.Int64

	templateOnce sync.Once
	templateErr  error
}

var current *Server

// Main starts the server, runs the package's tests and stops the server.
// Call it from TestMain: func TestMain(m *testing.M) { pgtest.Main(m) }.
func Main(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	srv, err := Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "pgtest:", err)
		return 1
	}
	defer srv.Stop()
	current = srv
	return m.Run()
}

// Start initialises a data directory in a new temporary directory and starts
// PostgreSQL on a free loopback port. As root it runs the server as the
// "postgres" system user, because PostgreSQL refuses to run as root.
func Start() (*Server, error) {
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "ferry-pgtest-")
	if err != nil {
		return nil, err
	}
	srv := &Server{dir: dir, binDir: binDir}

	if os.Geteuid() == 0 {
		cred, err := postgresCredential()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		srv.cred = cred
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}

	port, err := freePort()
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	srv.port = port

	data := filepath.Join(dir, "data")
	if err := srv.pgCommand("initdb", "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync", "--no-instructions"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200", port, dir)
	if err := srv.pgCommand("pg_ctl", "-D", data, "-o", opts, "-l", filepath.Join(dir, "postgres.log"), "-w", "-t", "120", "start"); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return srv, nil
}

// Stop shuts the server down and removes its directory.
func (s *Server) Stop() {
	_ = s.pgCommand("pg_ctl", "-D", filepath.Join(s.dir, "data"), "-m", "immediate", "-w", "stop")
	os.RemoveAll(s.dir)
}

// URL returns a connection URL for the named database on this server.
func (s *Server) URL(database string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", s.port, database)
}

// NewDatabase creates an empty database and returns its URL.
func (s *Server) NewDatabase(ctx context.Context, template string) (string, error) {
	name := fmt.Sprintf("t%d_%d", os.Getpid(), s.counter.Add(1))
	admin, err := sql.Open("postgres", s.URL("postgres"))
	if err != nil {
		return "", err
	}
	defer admin.Close()
	stmt := "CREATE DATABASE " + name
	if template != "" {
		stmt += " TEMPLATE " + template
	}
	if _, err := admin.ExecContext(ctx, stmt); err != nil {
		return "", fmt.Errorf("create database %s: %w", name, err)
	}
	return s.URL(name), nil
}

// MigratedDatabase returns the URL of a new database with every migration
// applied, cloned from a template migrated once per server.
func (s *Server) MigratedDatabase(ctx context.Context) (string, error) {
	s.templateOnce.Do(func() { s.templateErr = s.createTemplate(ctx) })
	if s.templateErr != nil {
		return "", s.templateErr
	}
	return s.NewDatabase(ctx, templateDB)
}

func (s *Server) createTemplate(ctx context.Context) error {
	admin, err := sql.Open("postgres", s.URL("postgres"))
	if err != nil {
		return err
	}
	defer admin.Close()
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+templateDB); err != nil {
		return fmt.Errorf("create template database: %w", err)
	}
	st, err := store.Open(ctx, s.URL(templateDB))
	if err != nil {
		return err
	}
	defer st.Close()
	return st.Migrate(ctx)
}

// NewStore returns a store on a fresh migrated database of the test binary's
// server, closed when the test ends. The package must call Main from TestMain.
func NewStore(t testing.TB) *store.Store {
	t.Helper()
	url := NewURL(t)
	st, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// NewURL returns the URL of a fresh migrated database of the test binary's
// server. The package must call Main from TestMain.
func NewURL(t testing.TB) string {
	t.Helper()
	if current == nil {
		t.Fatal("pgtest: no server; call pgtest.Main from TestMain")
	}
	url, err := current.MigratedDatabase(context.Background())
	if err != nil {
		t.Fatalf("create database: %v", err)
	}
	return url
}

// Current returns the test binary's server, or nil outside pgtest.Main.
func Current() *Server { return current }

func (s *Server) pgCommand(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(s.binDir, name), args...)
	cmd.Dir = s.dir
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s failed: %w\n%s", name, err, out)
	}
	return nil
}

// findBinDir locates PostgreSQL's server binaries: FERRY_PG_BINDIR, then
// Debian's versioned directories, then PATH.
func findBinDir() (string, error) {
	if dir := os.Getenv("FERRY_PG_BINDIR"); dir != "" {
		return dir, nil
	}
	for _, v := range []string{"17", "16", "15"} {
		dir := "/usr/lib/postgresql/" + v + "/bin"
		if _, err := os.Stat(filepath.Join(dir, "pg_ctl")); err == nil {
			return dir, nil
		}
	}
	if path, err := exec.LookPath("pg_ctl"); err == nil {
		return filepath.Dir(path), nil
	}
	return "", fmt.Errorf("PostgreSQL server binaries not found: install postgresql-15 (make setup) or set FERRY_PG_BINDIR")
}

func postgresCredential() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root needs the postgres system user (install postgresql-15): %w", err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
