package omemo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/logger"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/serialize"
	"go.mau.fi/libsignal/state/record"
	"go.mau.fi/libsignal/state/store"
)

// libsignal logs through a package-level logger that prints warnings and
// errors to standard output. This package reports every failure as an
// error, so the library's own log is dropped (its debug lines would carry
// key material).
func init() {
	var l logger.Loggable = quietLogger{}
	logger.Setup(&l)
}

type quietLogger struct{}

func (quietLogger) Debug(string, string)   {}
func (quietLogger) Info(string, string)    {}
func (quietLogger) Warning(string, string) {}
func (quietLogger) Error(string, string)   {}
func (quietLogger) Configure(string)       {}

// serializer is libsignal's wire format for messages (protobuf, as
// libsignal-protocol-java) and its own JSON form for session records.
var serializer = serialize.NewProtoBufSerializer()

// addrKey is the store key of a remote device: the bare JID, a slash (which
// a bare JID cannot contain) and the device id.
func addrKey(jid string, device uint32) string {
	return jid + "/" + strconv.FormatUint(uint64(device), 10)
}

func parseAddrKey(k string) (jid string, device uint32, ok bool) {
	i := strings.LastIndexByte(k, '/')
	if i < 0 {
		return "", 0, false
	}
	n, err := strconv.ParseUint(k[i+1:], 10, 32)
	if err != nil {
		return "", 0, false
	}
	return k[:i], uint32(n), true
}

func idKey(id uint32) string { return fmt.Sprintf("%010d", id) }

// localRecord is the local device, in bucketLocal under "device".
type localRecord struct {
	JID             string `json:"jid"`
	DeviceID        uint32 `json:"device_id"`
	RegistrationID  uint32 `json:"registration_id"`
	IdentityPrivate []byte `json:"identity_private"`
	NextPreKeyID    uint32 `json:"next_pre_key_id"`
	SignedPreKeyID  uint32 `json:"signed_pre_key_id"` // the current one
	NextSignedID    uint32 `json:"next_signed_pre_key_id"`
}

// signedPreKeyRecord is one signed pre-key. libsignal's own record
// serializer loses the public key (it truncates the 33-byte form into 32
// bytes), so keys are stored as private keys and their public halves
// recomputed.
type signedPreKeyRecord struct {
	Private   []byte `json:"private"`
	Signature []byte `json:"signature"`
	Created   int64  `json:"created"` // Unix seconds
}

// remoteDevice is what is known of a remote device, in bucketIdentity.
type remoteDevice struct {
	IdentityKey []byte `json:"identity_key"` // KeySize bytes
	Trust       Trust  `json:"trust"`
	FirstSeen   int64  `json:"first_seen"`
}

func keyPair(private []byte) (*ecc.ECKeyPair, error) {
	if len(private) != 32 {
		return nil, errors.New("omemo: stored private key is not 32 bytes")
	}
	return ecc.CreateKeyPair(private), nil
}

// decodeKey turns a checked KeySize-byte key into a libsignal key.
func decodeKey(k []byte) (ecc.ECPublicKeyable, error) {
	if len(k) != KeySize || k[0] != ecc.DjbType {
		return nil, corrupt("not a Curve25519 public key (%d bytes)", len(k))
	}
	return ecc.DecodePoint(k, 0)
}

// signalStore gives libsignal the stores it asks for, on top of one txn.
type signalStore struct {
	t   *txn
	dev *Device
}

var (
	_ store.IdentityKey  = (*signalStore)(nil)
	_ store.PreKey       = (*signalStore)(nil)
	_ store.SignedPreKey = (*signalStore)(nil)
	_ store.Session      = (*signalStore)(nil)
)

func (s *signalStore) GetIdentityKeyPair() *identity.KeyPair { return s.dev.identity }
func (s *signalStore) GetLocalRegistrationID() uint32        { return s.dev.local.RegistrationID }

func (s *signalStore) loadRemote(ctx context.Context, a *protocol.SignalAddress) (*remoteDevice, error) {
	v, err := s.t.get(ctx, bucketIdentity, addrKey(a.Name(), a.DeviceID()))
	if err != nil {
		return nil, err
	}
	r := new(remoteDevice)
	if err := json.Unmarshal(v, r); err != nil {
		return nil, fmt.Errorf("omemo: stored identity of %s: %w", a, err)
	}
	return r, nil
}

// SaveIdentity records the identity key of a device the first time it is
// seen. A different key for a known device never gets here: libsignal asks
// IsTrustedIdentity first.
func (s *signalStore) SaveIdentity(ctx context.Context, a *protocol.SignalAddress, k *identity.Key) error {
	_, err := s.loadRemote(ctx, a)
	if err == nil {
		return nil
	}
	if !errors.Is(err, ErrNotFound) {
		return err
	}
	r := remoteDevice{IdentityKey: k.Serialize(), Trust: Undecided, FirstSeen: s.dev.now().Unix()}
	v, _ := json.Marshal(r)
	s.t.put(bucketIdentity, addrKey(a.Name(), a.DeviceID()), v)
	return nil
}

// IsTrustedIdentity is libsignal's question: has this device kept its
// identity key? The trust decisions themselves (BTBV, verified,
// distrusted) are made by Device around libsignal's calls.
func (s *signalStore) IsTrustedIdentity(ctx context.Context, a *protocol.SignalAddress, k *identity.Key) (bool, error) {
	r, err := s.loadRemote(ctx, a)
	if errors.Is(err, ErrNotFound) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return string(r.IdentityKey) == string(k.Serialize()), nil
}

func (s *signalStore) LoadPreKey(ctx context.Context, id uint32) (*record.PreKey, error) {
	v, err := s.t.get(ctx, bucketPreKey, idKey(id))
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	kp, err := keyPair(v)
	if err != nil {
		return nil, err
	}
	return record.NewPreKey(id, kp, serializer.PreKeyRecord), nil
}

func (s *signalStore) StorePreKey(_ context.Context, id uint32, r *record.PreKey) error {
	priv := r.KeyPair().PrivateKey().Serialize()
	s.t.put(bucketPreKey, idKey(id), priv[:])
	return nil
}

func (s *signalStore) ContainsPreKey(ctx context.Context, id uint32) (bool, error) {
	return s.t.has(ctx, bucketPreKey, idKey(id))
}

func (s *signalStore) RemovePreKey(_ context.Context, id uint32) error {
	s.t.del(bucketPreKey, idKey(id))
	s.dev.preKeysUsed++
	return nil
}

func (s *signalStore) loadSigned(ctx context.Context, id uint32) (*signedPreKeyRecord, error) {
	v, err := s.t.get(ctx, bucketSignedPreKey, idKey(id))
	if err != nil {
		return nil, err
	}
	r := new(signedPreKeyRecord)
	if err := json.Unmarshal(v, r); err != nil {
		return nil, fmt.Errorf("omemo: stored signed pre-key %d: %w", id, err)
	}
	if len(r.Signature) != 64 {
		return nil, fmt.Errorf("omemo: stored signed pre-key %d: bad signature", id)
	}
	return r, nil
}

func (s *signalStore) LoadSignedPreKey(ctx context.Context, id uint32) (*record.SignedPreKey, error) {
	r, err := s.loadSigned(ctx, id)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	kp, err := keyPair(r.Private)
	if err != nil {
		return nil, err
	}
	return record.NewSignedPreKey(id, r.Created*1000, kp, [64]byte(r.Signature), serializer.SignedPreKeyRecord), nil
}

func (s *signalStore) LoadSignedPreKeys(ctx context.Context) ([]*record.SignedPreKey, error) {
	keys, err := s.t.keys(ctx, bucketSignedPreKey, "")
	if err != nil {
		return nil, err
	}
	var out []*record.SignedPreKey
	for _, k := range keys {
		id, err := strconv.ParseUint(k, 10, 32)
		if err != nil {
			continue
		}
		r, err := s.LoadSignedPreKey(ctx, uint32(id))
		if err != nil {
			return nil, err
		}
		if r != nil {
			out = append(out, r)
		}
	}
	return out, nil
}

func (s *signalStore) StoreSignedPreKey(_ context.Context, id uint32, r *record.SignedPreKey) error {
	priv := r.KeyPair().PrivateKey().Serialize()
	sig := r.Signature()
	v, _ := json.Marshal(signedPreKeyRecord{Private: priv[:], Signature: sig[:], Created: r.Timestamp() / 1000})
	s.t.put(bucketSignedPreKey, idKey(id), v)
	return nil
}

func (s *signalStore) ContainsSignedPreKey(ctx context.Context, id uint32) (bool, error) {
	return s.t.has(ctx, bucketSignedPreKey, idKey(id))
}

func (s *signalStore) RemoveSignedPreKey(_ context.Context, id uint32) error {
	s.t.del(bucketSignedPreKey, idKey(id))
	return nil
}

func (s *signalStore) LoadSession(ctx context.Context, a *protocol.SignalAddress) (*record.Session, error) {
	v, err := s.t.get(ctx, bucketSession, addrKey(a.Name(), a.DeviceID()))
	if errors.Is(err, ErrNotFound) {
		return record.NewSession(serializer.Session, serializer.State), nil
	}
	if err != nil {
		return nil, err
	}
	return loadSessionRecord(v)
}

// loadSessionRecord decodes a stored session. libsignal's decoder panics on
// some malformed input (keys of the wrong length); a damaged store must
// not take the program down with it.
func loadSessionRecord(v []byte) (r *record.Session, err error) {
	defer func() {
		if p := recover(); p != nil {
			r, err = nil, fmt.Errorf("omemo: damaged session record: %v", p)
		}
	}()
	r, err = record.NewSessionFromBytes(v, serializer.Session, serializer.State)
	if err != nil {
		return nil, fmt.Errorf("omemo: damaged session record: %w", err)
	}
	return r, nil
}

func (s *signalStore) GetSubDeviceSessions(ctx context.Context, name string) ([]uint32, error) {
	keys, err := s.t.keys(ctx, bucketSession, name+"/")
	if err != nil {
		return nil, err
	}
	var ids []uint32
	for _, k := range keys {
		if jid, id, ok := parseAddrKey(k); ok && jid == name {
			ids = append(ids, id)
		}
	}
	return ids, nil
}

func (s *signalStore) StoreSession(_ context.Context, a *protocol.SignalAddress, r *record.Session) error {
	// libsignal v0.2.1 computes the previous chain length of a new sending
	// chain as max(index-1, 0) in uint32, which wraps to 2^32-1 when the
	// old chain sent nothing (the first reply of a session's responder).
	// libsignal-protocol-java computes it in int and gets 0; python-omemo
	// reads the wrapped value as four billion skipped messages. Restore
	// Java's value: no real chain is that long.
	if st := r.SessionState(); st != nil && st.PreviousCounter() == math.MaxUint32 {
		st.SetPreviousCounter(0)
	}
	s.t.put(bucketSession, addrKey(a.Name(), a.DeviceID()), r.Serialize())
	return nil
}

func (s *signalStore) ContainsSession(ctx context.Context, a *protocol.SignalAddress) (bool, error) {
	v, err := s.t.get(ctx, bucketSession, addrKey(a.Name(), a.DeviceID()))
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	r, err := loadSessionRecord(v)
	if err != nil {
		return false, err
	}
	return !r.IsFresh() && r.SessionState().HasSenderChain(), nil
}

func (s *signalStore) DeleteSession(_ context.Context, a *protocol.SignalAddress) error {
	s.t.del(bucketSession, addrKey(a.Name(), a.DeviceID()))
	return nil
}

func (s *signalStore) DeleteAllSessions(ctx context.Context) error {
	keys, err := s.t.keys(ctx, bucketSession, "")
	if err != nil {
		return err
	}
	for _, k := range keys {
		s.t.del(bucketSession, k)
	}
	return nil
}
