package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"golang.org/x/crypto/argon2"

	"github.com/skiffhq/skiff/internal/hubapi"
)

// Sentinel errors callers branch on. Those an API error code stands
// for are [hubapi]'s, so clients match them with errors.Is.
var (
	ErrNotFound      = hubapi.ErrNotFound
	ErrExists        = errors.New("already exists")
	ErrUnauthorized  = hubapi.ErrUnauthorized
	ErrForbidden     = hubapi.ErrForbidden
	ErrBadCredential = errors.New("wrong user name, password or one-time code")
	ErrRateLimited   = hubapi.ErrRateLimited
	ErrOTPRequired   = hubapi.ErrOTPRequired
	ErrTokenExpired  = errors.New("token expired")
	ErrConflict      = hubapi.ErrConflict
	ErrInvalid       = hubapi.ErrInvalid
)

// Level is a permission on an owner (a namespace): read < write < admin.
type Level int

// Permission levels.
const (
	LevelNone Level = iota
	// LevelRead pulls and searches approved packages.
	LevelRead
	// LevelWrite also pushes packages.
	LevelWrite
	// LevelAdmin also approves, rejects and removes packages and grants
	// permissions on the owner.
	LevelAdmin
)

func (l Level) String() string {
	switch l {
	case LevelRead:
		return "read"
	case LevelWrite:
		return "write"
	case LevelAdmin:
		return "admin"
	}
	return "none"
}

// ParseLevel parses "read", "write", "admin" or "none".
func ParseLevel(s string) (Level, error) {
	for l := LevelNone; l <= LevelAdmin; l++ {
		if l.String() == s {
			return l, nil
		}
	}
	return LevelNone, fmt.Errorf("%w: permission %q: use read, write, admin or none", ErrInvalid, s)
}

// ValidName is [hubapi.ValidName].
func ValidName(s string) bool { return hubapi.ValidName(s) }

// User is a hub account.
type User struct {
	Name  string `json:"name"`
	Admin bool   `json:"admin"`
	MFA   bool   `json:"mfa"`
	// Disabled users cannot log in, and their tokens are refused.
	Disabled bool      `json:"disabled,omitempty"`
	Created  time.Time `json:"created"`

	passwordHash string
	totpSecret   string
	totpPending  string
	totpLastStep int64
}

// Argon2id parameters (OWASP's recommended minimum).
const (
	argonTime    = 2
	argonMemory  = 19 * 1024
	argonThreads = 1
	argonKeyLen  = 32
)

// HashPassword hashes a password with argon2id in PHC string format.
func HashPassword(password string) string {
	salt := make([]byte, 16)
	rand.Read(salt)
	key := argon2.IDKey([]byte(password), salt, argonTime, argonMemory, argonThreads, argonKeyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, argonMemory, argonTime, argonThreads, b64.EncodeToString(salt), b64.EncodeToString(key))
}

// CheckPassword reports whether password matches a HashPassword hash.
func CheckPassword(hash, password string) bool {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[1] != "argon2id" {
		return false
	}
	var m, t uint32
	var p uint8
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &m, &t, &p); err != nil || m > 1<<20 || t > 16 || p == 0 {
		return false
	}
	b64 := base64.RawStdEncoding
	salt, err1 := b64.DecodeString(parts[4])
	want, err2 := b64.DecodeString(parts[5])
	if err1 != nil || err2 != nil || len(want) == 0 || len(want) > 64 {
		return false
	}
	got := argon2.IDKey([]byte(password), salt, t, m, p, uint32(len(want)))
	return subtle.ConstantTimeCompare(got, want) == 1
}

// RandomPassword returns a random password of 20 URL-safe characters.
func RandomPassword() string {
	b := make([]byte, 15)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// AddUser creates a user. A password shorter than 8 characters is refused.
func (s *Store) AddUser(ctx context.Context, name, password string, admin bool) error {
	return s.addUser(ctx, name, password, admin, nil)
}

// AddUserAs is AddUser recorded in the audit log as done by actor, in
// the same transaction: both happen or neither does.
func (s *Store) AddUserAs(ctx context.Context, actor, name, password string, admin bool) error {
	return s.addUser(ctx, name, password, admin, &auditRecord{actor, ActionUserAdd, name, map[string]any{"admin": admin}})
}

// addUser is AddUser appending rec to the audit log in the same
// transaction.
func (s *Store) addUser(ctx context.Context, name, password string, admin bool, rec *auditRecord) error {
	if !ValidName(name) {
		return fmt.Errorf("%w: user name %q: use lower case letters, digits, '.', '_' and '-'", ErrInvalid, name)
	}
	if len(password) < 8 {
		return fmt.Errorf("%w: the password is too short: use at least 8 characters", ErrInvalid)
	}
	if _, err := s.User(ctx, name); err == nil {
		return fmt.Errorf("user %s: %w", name, ErrExists)
	}
	hash := HashPassword(password)
	err := s.audited(ctx, rec, func(tx *StoreTx) error {
		if err := tx.exec(ctx, `INSERT INTO users (name, password_hash, admin, created) VALUES (?, ?, ?, ?)`,
			name, hash, boolInt(admin), s.now().Unix()); err != nil {
			return fmt.Errorf("adding user %s: %w", name, err)
		}
		return nil
	})
	return err
}

// SetPassword replaces a user's password.
func (s *Store) SetPassword(ctx context.Context, name, password string) error {
	if len(password) < 8 {
		return fmt.Errorf("%w: the password is too short: use at least 8 characters", ErrInvalid)
	}
	return s.updateUser(ctx, name, `UPDATE users SET password_hash = ? WHERE name = ?`, HashPassword(password), name)
}

// SetAdmin makes a user a site administrator, or not.
func (s *Store) SetAdmin(ctx context.Context, name string, admin bool) error {
	return s.updateUser(ctx, name, `UPDATE users SET admin = ? WHERE name = ?`, boolInt(admin), name)
}

func (s *Store) updateUser(ctx context.Context, name, q string, args ...any) error {
	return s.updateUserOn(ctx, s.db, name, q, args...)
}

func (s *Store) updateUserOn(ctx context.Context, db querier, name, q string, args ...any) error {
	res, err := db.ExecContext(ctx, s.rebind(q), args...)
	if err != nil {
		return fmt.Errorf("updating user %s: %w", name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("user %s: %w", name, ErrNotFound)
	}
	return nil
}

// User returns a user by name.
func (s *Store) User(ctx context.Context, name string) (*User, error) {
	u := &User{Name: name}
	var admin, disabled int
	var created int64
	err := s.row(ctx, s.db, `SELECT password_hash, admin, disabled, totp_secret, totp_pending, totp_last_step, created FROM users WHERE name = ?`, name).
		Scan(&u.passwordHash, &admin, &disabled, &u.totpSecret, &u.totpPending, &u.totpLastStep, &created)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("user %s: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("reading user %s: %w", name, err)
	}
	u.Admin, u.Disabled = admin != 0, disabled != 0
	u.MFA = u.totpSecret != ""
	u.Created = time.Unix(created, 0).UTC()
	return u, nil
}

// Users lists the users by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.rows(ctx, s.db, `SELECT name, admin, disabled, totp_secret, created FROM users ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []User
	for rows.Next() {
		var u User
		var admin, disabled int
		var secret string
		var created int64
		if err := rows.Scan(&u.Name, &admin, &disabled, &secret, &created); err != nil {
			return nil, err
		}
		u.Admin, u.Disabled, u.MFA, u.Created = admin != 0, disabled != 0, secret != "", time.Unix(created, 0).UTC()
		out = append(out, u)
	}
	return out, rows.Err()
}

// AddGroupMember adds user to group, creating the group.
func (s *Store) AddGroupMember(ctx context.Context, group, user string) error {
	return s.addGroupMember(ctx, group, user, nil)
}

// addGroupMember is AddGroupMember appending rec to the audit log in the
// same transaction.
func (s *Store) addGroupMember(ctx context.Context, group, user string, rec *auditRecord) error {
	if !ValidName(group) {
		return fmt.Errorf("%w: group name %q", ErrInvalid, group)
	}
	if _, err := s.User(ctx, user); err != nil {
		return err
	}
	return s.audited(ctx, rec, func(tx *StoreTx) error {
		var n int
		if err := tx.row(ctx, `SELECT COUNT(*) FROM hub_groups WHERE name = ?`, group).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			if err := tx.exec(ctx, `INSERT INTO hub_groups (name) VALUES (?)`, group); err != nil {
				return err
			}
		}
		if err := tx.row(ctx, `SELECT COUNT(*) FROM group_members WHERE group_name = ? AND user_name = ?`, group, user).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return nil
		}
		return tx.exec(ctx, `INSERT INTO group_members (group_name, user_name) VALUES (?, ?)`, group, user)
	})
}

// Grant sets subject's permission on owner; subject is "user:NAME" or
// "group:NAME" (a bare name is a user). LevelNone revokes.
func (s *Store) Grant(ctx context.Context, owner, subject string, level Level) error {
	return s.grant(ctx, owner, subject, level, nil)
}

// GrantAs is Grant recorded in the audit log as done by actor, in the
// same transaction: both happen or neither does.
func (s *Store) GrantAs(ctx context.Context, actor, owner, subject string, level Level) error {
	return s.grant(ctx, owner, subject, level, &auditRecord{actor, ActionGrant, owner, map[string]any{"subject": subject, "level": level.String()}})
}

// grant is Grant appending rec to the audit log in the same transaction.
func (s *Store) grant(ctx context.Context, owner, subject string, level Level, rec *auditRecord) error {
	if !ValidName(owner) {
		return fmt.Errorf("%w: owner name %q", ErrInvalid, owner)
	}
	kind, name, ok := strings.Cut(subject, ":")
	if !ok {
		kind, name = "user", subject
	}
	switch kind {
	case "user":
		if _, err := s.User(ctx, name); err != nil {
			return err
		}
	case "group":
		if !ValidName(name) {
			return fmt.Errorf("%w: group name %q", ErrInvalid, name)
		}
	default:
		return fmt.Errorf("%w: subject %q: use user:NAME or group:NAME", ErrInvalid, subject)
	}
	subject = kind + ":" + name
	return s.audited(ctx, rec, func(tx *StoreTx) error {
		if err := tx.exec(ctx, `DELETE FROM grants WHERE owner = ? AND subject = ?`, owner, subject); err != nil {
			return err
		}
		if level == LevelNone {
			return nil
		}
		return tx.exec(ctx, `INSERT INTO grants (owner, subject, level) VALUES (?, ?, ?)`, owner, subject, int(level))
	})
}

// GrantEntry is one grant.
type GrantEntry struct {
	Owner   string `json:"owner"`
	Subject string `json:"subject"`
	Level   string `json:"level"`
}

// Grants lists the grants on owner ("" for all).
func (s *Store) Grants(ctx context.Context, owner string) ([]GrantEntry, error) {
	rows, err := s.rows(ctx, s.db, `SELECT owner, subject, level FROM grants WHERE owner = ? OR ? = '' ORDER BY owner, subject`, owner, owner)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []GrantEntry
	for rows.Next() {
		var g GrantEntry
		var l int
		if err := rows.Scan(&g.Owner, &g.Subject, &l); err != nil {
			return nil, err
		}
		g.Level = Level(l).String()
		out = append(out, g)
	}
	return out, rows.Err()
}

// Level returns user's permission on owner: site administrators have
// admin everywhere; anyone else has the highest grant to the user or one
// of their groups. Nothing else gives rights: a user named like an owner
// has none on it without a grant.
func (s *Store) Level(ctx context.Context, user, owner string) (Level, error) {
	return s.levelOn(ctx, s.db, user, owner)
}

// levelOn is Level read through q (a transaction).
func (s *Store) levelOn(ctx context.Context, q querier, user, owner string) (Level, error) {
	var admin int
	err := s.row(ctx, q, `SELECT admin FROM users WHERE name = ?`, user).Scan(&admin)
	if errors.Is(err, sql.ErrNoRows) {
		return LevelNone, fmt.Errorf("user %s: %w", user, ErrNotFound)
	}
	if err != nil {
		return LevelNone, err
	}
	if admin != 0 {
		return LevelAdmin, nil
	}
	var l sql.NullInt64
	err = s.row(ctx, q, `SELECT MAX(level) FROM grants WHERE owner = ? AND (subject = ? OR subject IN
		(SELECT 'group:' || group_name FROM group_members WHERE user_name = ?))`, owner, "user:"+user, user).Scan(&l)
	if err != nil {
		return LevelNone, err
	}
	return Level(l.Int64), nil
}

// TokenPrefix starts every API token.
const TokenPrefix = "skf_"

// Token is [hubapi.Token].
type Token = hubapi.Token

// Token kinds.
const (
	// TokenLogin is issued by a login (skiff login).
	TokenLogin = "login"
	// TokenWeb is a web UI session.
	TokenWeb = "web"
	// TokenAPI is created for a program (skiff hub token create).
	TokenAPI = "api"
)

// TokenInfo is [hubapi.TokenInfo].
type TokenInfo = hubapi.TokenInfo

// CreateToken issues an API token for user valid for ttl. Only its
// sha256 is stored.
func (s *Store) CreateToken(ctx context.Context, user, name string, ttl time.Duration) (*Token, error) {
	return s.createToken(ctx, user, name, TokenAPI, ttl, nil)
}

// createToken is CreateToken of a kind, appending audit(token), if
// audit is not nil, to the audit log in the same transaction.
func (s *Store) createToken(ctx context.Context, user, name, kind string, ttl time.Duration, audit func(*Token) *auditRecord) (*Token, error) {
	if ttl <= 0 {
		return nil, fmt.Errorf("%w: token lifetime %s: use a positive duration", ErrInvalid, ttl)
	}
	if s.maxTokenTTL > 0 && ttl > s.maxTokenTTL {
		ttl = s.maxTokenTTL
	}
	b := make([]byte, 32)
	rand.Read(b)
	secret := TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	now := s.now()
	t := &Token{Secret: secret, User: user, Name: name, Kind: kind, Expires: now.Add(ttl).UTC().Truncate(time.Second)}
	var rec *auditRecord
	if audit != nil {
		rec = audit(t)
	}
	err := s.audited(ctx, rec, func(tx *StoreTx) error {
		if err := tx.exec(ctx, `INSERT INTO tokens (user_name, hash, name, kind, created, expires) VALUES (?, ?, ?, ?, ?, ?)`,
			user, tokenHash(secret), name, kind, now.Unix(), t.Expires.Unix()); err != nil {
			return fmt.Errorf("storing token: %w", err)
		}
		return tx.row(ctx, `SELECT id FROM tokens WHERE hash = ?`, tokenHash(secret)).Scan(&t.ID)
	})
	if err != nil {
		return nil, err
	}
	return t, nil
}

func tokenHash(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// TokenUser returns the user a token belongs to; an expired token gives
// ErrTokenExpired, an unknown one ErrBadCredential.
func (s *Store) TokenUser(ctx context.Context, secret string) (string, error) {
	t, err := s.token(ctx, secret)
	if err != nil {
		return "", err
	}
	return t.User, nil
}

// token returns the valid token secret names: ErrTokenExpired once it
// expired or is older than the hub's maximum token lifetime,
// ErrBadCredential when it is unknown (or revoked).
func (s *Store) token(ctx context.Context, secret string) (*TokenInfo, error) {
	t, err := scanToken(s.row(ctx, s.db, `SELECT `+tokenCols+` FROM tokens WHERE hash = ?`, tokenHash(secret)))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrBadCredential
	}
	if err != nil {
		return nil, err
	}
	now := s.now()
	if !now.Before(t.Expires) || (s.maxTokenTTL > 0 && !now.Before(t.Created.Add(s.maxTokenTTL))) {
		return nil, ErrTokenExpired
	}
	return t, nil
}

const tokenCols = `id, user_name, name, kind, created, expires`

func scanToken(sc interface{ Scan(...any) error }) (*TokenInfo, error) {
	var t TokenInfo
	var created, expires int64
	if err := sc.Scan(&t.ID, &t.User, &t.Name, &t.Kind, &created, &expires); err != nil {
		return nil, err
	}
	t.Created, t.Expires = time.Unix(created, 0).UTC(), time.Unix(expires, 0).UTC()
	return &t, nil
}

// RevokeToken deletes a token.
func (s *Store) RevokeToken(ctx context.Context, secret string) error {
	return s.exec(ctx, s.db, `DELETE FROM tokens WHERE hash = ?`, tokenHash(secret))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
