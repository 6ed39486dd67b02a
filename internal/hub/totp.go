package hub

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// TOTP parameters (RFC 6238 defaults, which authenticator apps expect).
const (
	totpPeriod = 30
	totpDigits = 6
	totpSkew   = 1 // steps accepted either side of now
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewTOTPSecret returns a random 160-bit secret, base32 without padding.
func NewTOTPSecret() string {
	b := make([]byte, 20)
	rand.Read(b)
	return b32.EncodeToString(b)
}

// TOTPCode returns the code for secret at time step (unix time / 30).
func TOTPCode(secret string, step int64) (string, error) {
	key, err := b32.DecodeString(strings.ToUpper(strings.ReplaceAll(secret, " ", "")))
	if err != nil {
		return "", fmt.Errorf("%w: the TOTP secret is not base32", ErrInvalid)
	}
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	m := hmac.New(sha1.New, key)
	m.Write(msg[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	v := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	return fmt.Sprintf("%06d", v%1_000_000), nil
}

// TOTPStep returns the time step of t.
func TOTPStep(t time.Time) int64 { return t.Unix() / totpPeriod }

// matchTOTP returns the step within ±totpSkew of now whose code is code
// and that is later than after, or 0.
func matchTOTP(secret, code string, now time.Time, after int64) int64 {
	if len(code) != totpDigits {
		return 0
	}
	cur := TOTPStep(now)
	for d := int64(-totpSkew); d <= totpSkew; d++ {
		step := cur + d
		if step <= after {
			continue
		}
		want, err := TOTPCode(secret, step)
		if err == nil && hmac.Equal([]byte(want), []byte(code)) {
			return step
		}
	}
	return 0
}

// TOTPURL is the otpauth:// URL authenticator apps import.
func TOTPURL(issuer, user, secret string) string {
	v := url.Values{"secret": {secret}, "issuer": {issuer}, "algorithm": {"SHA1"}, "digits": {"6"}, "period": {"30"}}
	return "otpauth://totp/" + url.PathEscape(issuer+":"+user) + "?" + v.Encode()
}

// EnrollTOTP starts MFA enrolment: it stores and returns a new pending
// secret. MFA is on once ConfirmTOTP accepts a code for it.
func (s *Store) EnrollTOTP(ctx context.Context, user string) (string, error) {
	secret := NewTOTPSecret()
	if err := s.updateUser(ctx, user, `UPDATE users SET totp_pending = ? WHERE name = ?`, secret, user); err != nil {
		return "", err
	}
	return secret, nil
}

// ConfirmTOTP turns MFA on when code is valid for the pending secret.
func (s *Store) ConfirmTOTP(ctx context.Context, user, code string) error {
	return s.confirmTOTP(ctx, user, code, nil)
}

// confirmTOTP is ConfirmTOTP appending rec to the audit log in the same
// transaction.
func (s *Store) confirmTOTP(ctx context.Context, user, code string, rec *auditRecord) error {
	u, err := s.User(ctx, user)
	if err != nil {
		return err
	}
	if u.totpPending == "" {
		return fmt.Errorf("%w: no MFA enrolment is pending: run `skiff hub mfa enroll` first", ErrInvalid)
	}
	step := matchTOTP(u.totpPending, code, s.now(), 0)
	if step == 0 {
		return ErrBadCredential
	}
	return s.audited(ctx, rec, func(tx *StoreTx) error {
		return s.updateUserOn(ctx, tx.stx, user, `UPDATE users SET totp_secret = totp_pending, totp_pending = '', totp_last_step = ? WHERE name = ?`, step, user)
	})
}

// DisableTOTP turns MFA off for user.
func (s *Store) DisableTOTP(ctx context.Context, user string) error {
	return s.updateUser(ctx, user, `UPDATE users SET totp_secret = '', totp_pending = '', totp_last_step = 0 WHERE name = ?`, user)
}

// useTOTP accepts code for u once: a code (time step) already used, or
// any earlier one, is refused, so a code seen in transit cannot be
// replayed.
func (s *Store) useTOTP(ctx context.Context, u *User, code string) bool {
	step := matchTOTP(u.totpSecret, code, s.now(), u.totpLastStep)
	if step == 0 {
		return false
	}
	res, err := s.db.ExecContext(ctx, s.rebind(`UPDATE users SET totp_last_step = ? WHERE name = ? AND totp_last_step < ?`), step, u.Name, step)
	if err != nil {
		return false
	}
	n, _ := res.RowsAffected()
	return n == 1
}
