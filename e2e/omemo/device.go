package omemo

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.mau.fi/libsignal/ecc"
	"go.mau.fi/libsignal/keys/identity"
	"go.mau.fi/libsignal/keys/prekey"
	"go.mau.fi/libsignal/protocol"
	"go.mau.fi/libsignal/session"
	"go.mau.fi/libsignal/signalerror"
	"go.mau.fi/libsignal/util/optional"
)

// Defaults of Config.
const (
	DefaultPreKeys            = 100
	DefaultSignedPreKeyPeriod = 7 * 24 * time.Hour
)

// maxPreKeyID is the largest pre-key id: libsignal-protocol-java's
// Medium.MAX_VALUE, which it treats as "no pre-key".
const maxPreKeyID = 0xFFFFFE

// TrustPolicy says which devices are used before the user has decided on
// their fingerprints.
type TrustPolicy uint8

// Trust policies.
const (
	// BlindTrust is "blind trust before verification" (BTBV), as
	// Conversations, Dino and Gajim do: a new device of an account is used
	// without asking as long as the user has verified no device of that
	// account. Once one is verified, new devices are not used until
	// decided on.
	BlindTrust TrustPolicy = iota
	// ManualTrust uses only verified devices.
	ManualTrust
)

// Trust is the decision about one device's identity key.
type Trust uint8

// Trust decisions.
const (
	// Undecided: no decision yet. Under BlindTrust the device is used
	// while no device of its account is Verified.
	Undecided Trust = iota
	// Verified: the user compared the fingerprint out of band.
	Verified
	// Distrusted: never encrypt to it or accept messages from it.
	Distrusted
)

func (t Trust) String() string {
	switch t {
	case Verified:
		return "verified"
	case Distrusted:
		return "distrusted"
	}
	return "undecided"
}

// Config configures Open.
type Config struct {
	// JID is the bare JID of the account the device belongs to.
	JID string
	// Store keeps the device's state. Required.
	Store Store

	// FetchBundle, if set, is called by Encrypt for a device of a
	// recipient with which there is no session yet: it returns the
	// device's bundle (from the PEP node NodeBundle(device) of jid).
	// Without it, Encrypt uses only devices with a session or a bundle
	// given to AddBundle.
	FetchBundle func(ctx context.Context, jid string, device uint32) (*Bundle, error)

	// Policy is the trust policy (default BlindTrust).
	Policy TrustPolicy

	// DeviceID is the id to give a new device; zero picks a random one.
	// It is ignored when the store already holds a device.
	DeviceID uint32

	// PreKeys is the number of one-time pre-keys in the bundle (default
	// DefaultPreKeys); a used one is replaced at once.
	PreKeys int
	// SignedPreKeyPeriod is how long a signed pre-key is published before
	// Maintain replaces it (default DefaultSignedPreKeyPeriod). The
	// previous one is kept for as long again, for messages in flight.
	SignedPreKeyPeriod time.Duration

	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Logger receives what Encrypt skips (keys jid, device); nil means
	// slog.Default(). Keys and plaintext are never logged.
	Logger *slog.Logger
}

// Device is one OMEMO device: an identity key, pre-keys, and Signal
// sessions with other devices, kept in a Store. Its methods may be called
// from any goroutine; they run one at a time.
type Device struct {
	cfg      Config
	id       uint32            // set by Open, never changed
	identity *identity.KeyPair // set by Open, never changed

	mu    sync.Mutex
	local localRecord // guarded by mu

	preKeysUsed int // during one operation, counted by signalStore
}

// Open loads the device kept in c.Store, or creates one (identity key,
// signed pre-key and one-time pre-keys) when the store holds none.
func Open(ctx context.Context, c Config) (*Device, error) {
	if c.Store == nil {
		return nil, errors.New("omemo: Config.Store is nil")
	}
	if c.JID == "" || strings.ContainsAny(c.JID, "/") {
		return nil, fmt.Errorf("omemo: Config.JID %q is not a bare JID", c.JID)
	}
	if c.PreKeys <= 0 {
		c.PreKeys = DefaultPreKeys
	}
	if c.SignedPreKeyPeriod <= 0 {
		c.SignedPreKeyPeriod = DefaultSignedPreKeyPeriod
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	d := &Device{cfg: c}
	v, err := c.Store.Get(ctx, bucketLocal, "device")
	switch {
	case err == nil:
		if err := json.Unmarshal(v, &d.local); err != nil {
			return nil, fmt.Errorf("omemo: stored device: %w", err)
		}
		if d.local.JID != c.JID {
			return nil, fmt.Errorf("omemo: the store holds a device of %s, not of %s", d.local.JID, c.JID)
		}
		kp, err := keyPair(d.local.IdentityPrivate)
		if err != nil {
			return nil, err
		}
		d.identity = identity.NewKeyPair(identity.NewKey(kp.PublicKey()), kp.PrivateKey())
		d.id = d.local.DeviceID
		return d, nil
	case errors.Is(err, ErrNotFound):
	default:
		return nil, err
	}
	if err := d.create(ctx); err != nil {
		return nil, err
	}
	d.id = d.local.DeviceID
	return d, nil
}

func randUint32(lo, hi uint32) uint32 {
	n, err := rand.Int(rand.Reader, big.NewInt(int64(hi-lo)+1))
	if err != nil {
		panic("omemo: crypto/rand failed: " + err.Error())
	}
	return lo + uint32(n.Int64())
}

func (d *Device) create(ctx context.Context) error {
	kp, err := ecc.GenerateKeyPair()
	if err != nil {
		return err
	}
	priv := kp.PrivateKey().Serialize()
	d.identity = identity.NewKeyPair(identity.NewKey(kp.PublicKey()), kp.PrivateKey())
	d.local = localRecord{
		JID:             d.cfg.JID,
		DeviceID:        d.cfg.DeviceID,
		RegistrationID:  randUint32(1, 16380),
		IdentityPrivate: priv[:],
		NextPreKeyID:    1,
		NextSignedID:    1,
	}
	if d.local.DeviceID == 0 {
		// XEP-0384 0.3: a random integer between 1 and 2^31 - 1.
		d.local.DeviceID = randUint32(1, 1<<31-1)
	}
	t := newTxn(d.cfg.Store)
	if err := d.newSignedPreKey(t); err != nil {
		return err
	}
	if _, err := d.refill(ctx, t); err != nil {
		return err
	}
	d.saveLocal(t)
	return t.commit(ctx)
}

// keepLocal returns a function that undoes the changes to d.local made by
// an operation that failed, for they were not stored either.
func (d *Device) keepLocal(err *error) func() {
	saved := d.local
	return func() {
		if *err != nil {
			d.local = saved
		}
	}
}

func (d *Device) saveLocal(t *txn) {
	v, _ := json.Marshal(d.local)
	t.put(bucketLocal, "device", v)
}

func (d *Device) now() time.Time { return d.cfg.Now() }

// newSignedPreKey makes a signed pre-key the current one.
func (d *Device) newSignedPreKey(t *txn) error {
	kp, err := ecc.GenerateKeyPair()
	if err != nil {
		return err
	}
	sig := ecc.CalculateSignature(d.identity.PrivateKey(), kp.PublicKey().Serialize())
	priv := kp.PrivateKey().Serialize()
	id := d.local.NextSignedID
	if id == 0 || id > maxPreKeyID {
		id = 1
	}
	v, _ := json.Marshal(signedPreKeyRecord{Private: priv[:], Signature: sig[:], Created: d.now().Unix()})
	t.put(bucketSignedPreKey, idKey(id), v)
	d.local.SignedPreKeyID = id
	d.local.NextSignedID = id + 1
	return nil
}

// refill tops the one-time pre-keys up to cfg.PreKeys. It reports whether
// it made any.
func (d *Device) refill(ctx context.Context, t *txn) (bool, error) {
	keys, err := t.keys(ctx, bucketPreKey, "")
	if err != nil {
		return false, err
	}
	made := false
	for n := len(keys); n < d.cfg.PreKeys; n++ {
		kp, err := ecc.GenerateKeyPair()
		if err != nil {
			return false, err
		}
		id := d.local.NextPreKeyID
		for {
			if id == 0 || id > maxPreKeyID {
				id = 1
			}
			// After a wrap, skip ids still in use.
			if used, err := t.has(ctx, bucketPreKey, idKey(id)); err != nil {
				return false, err
			} else if !used {
				break
			}
			id++
		}
		priv := kp.PrivateKey().Serialize()
		t.put(bucketPreKey, idKey(id), priv[:])
		d.local.NextPreKeyID = id + 1
		made = true
	}
	if made {
		d.saveLocal(t)
	}
	return made, nil
}

// ID returns the device id.
func (d *Device) ID() uint32 { return d.id }

// JID returns the bare JID of the device's account.
func (d *Device) JID() string { return d.cfg.JID }

// IdentityKey returns the public identity key in its wire form (KeySize
// bytes).
func (d *Device) IdentityKey() []byte { return d.identity.PublicKey().Serialize() }

// Fingerprint returns the fingerprint of the device's identity key: the
// lowercase hex of its 32-byte Curve25519 form, as Conversations and
// python-omemo show it (in groups of eight).
func (d *Device) Fingerprint() string { return Fingerprint(d.IdentityKey()) }

// Fingerprint returns the fingerprint of an identity key in its wire form.
func Fingerprint(identityKey []byte) string {
	if len(identityKey) == KeySize {
		identityKey = identityKey[1:]
	}
	return hex.EncodeToString(identityKey)
}

// Bundle returns the device's current bundle, to publish at
// NodeBundle(d.ID()). Publish it again when Decrypt or Maintain report
// that it changed. Publish it even when the device only sends: a receiver
// needs it to check the sender's identity key.
func (d *Device) Bundle(ctx context.Context) (*Bundle, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := newTxn(d.cfg.Store)
	ss := &signalStore{t: t, dev: d}
	spk, err := ss.loadSigned(ctx, d.local.SignedPreKeyID)
	if err != nil {
		return nil, fmt.Errorf("omemo: current signed pre-key: %w", err)
	}
	spkPair, err := keyPair(spk.Private)
	if err != nil {
		return nil, err
	}
	b := &Bundle{
		SignedPreKeyID:        d.local.SignedPreKeyID,
		SignedPreKey:          spkPair.PublicKey().Serialize(),
		SignedPreKeySignature: spk.Signature,
		IdentityKey:           d.IdentityKey(),
	}
	keys, err := t.keys(ctx, bucketPreKey, "")
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		id, err := strconv.ParseUint(k, 10, 32)
		if err != nil {
			continue
		}
		v, err := t.get(ctx, bucketPreKey, k)
		if err != nil {
			return nil, err
		}
		kp, err := keyPair(v)
		if err != nil {
			return nil, err
		}
		b.PreKeys = append(b.PreKeys, PreKey{ID: uint32(id), Key: kp.PublicKey().Serialize()})
	}
	return b, nil
}

// Maintain rotates the signed pre-key when it is older than
// Config.SignedPreKeyPeriod, forgets signed pre-keys older than twice
// that, and tops up the one-time pre-keys. It reports whether the bundle
// changed (then publish it again). Call it now and then, say daily.
func (d *Device) Maintain(ctx context.Context) (changed bool, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	defer d.keepLocal(&err)()
	t := newTxn(d.cfg.Store)
	ss := &signalStore{t: t, dev: d}
	cur, err := ss.loadSigned(ctx, d.local.SignedPreKeyID)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return false, err
	}
	now := d.now()
	if cur == nil || now.Sub(time.Unix(cur.Created, 0)) >= d.cfg.SignedPreKeyPeriod {
		if err := d.rotate(ctx, t, now); err != nil {
			return false, err
		}
		changed = true
	}
	made, err := d.refill(ctx, t)
	if err != nil {
		return false, err
	}
	d.saveLocal(t)
	return changed || made, t.commit(ctx)
}

// RotateSignedPreKey replaces the signed pre-key now; publish the bundle
// afterwards.
func (d *Device) RotateSignedPreKey(ctx context.Context) (err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	defer d.keepLocal(&err)()
	t := newTxn(d.cfg.Store)
	if err := d.rotate(ctx, t, d.now()); err != nil {
		return err
	}
	d.saveLocal(t)
	return t.commit(ctx)
}

func (d *Device) rotate(ctx context.Context, t *txn, now time.Time) error {
	old := d.local
	if err := d.newSignedPreKey(t); err != nil {
		d.local = old
		return err
	}
	ss := &signalStore{t: t, dev: d}
	keys, err := t.keys(ctx, bucketSignedPreKey, "")
	if err != nil {
		return err
	}
	for _, k := range keys {
		id, err := strconv.ParseUint(k, 10, 32)
		if err != nil || uint32(id) == d.local.SignedPreKeyID || uint32(id) == old.SignedPreKeyID {
			continue
		}
		r, err := ss.loadSigned(ctx, uint32(id))
		if err != nil {
			return err
		}
		if now.Sub(time.Unix(r.Created, 0)) > 2*d.cfg.SignedPreKeyPeriod {
			t.del(bucketSignedPreKey, k)
		}
	}
	return nil
}

// WithSelf returns the device list to publish at NodeDeviceList: the
// account's current list (nil if there is none) with this device added.
// The same list should also be given to SetDeviceList.
func (d *Device) WithSelf(current *DeviceList) *DeviceList {
	l := &DeviceList{}
	if current != nil {
		l.Devices = slices.Clone(current.Devices)
	}
	if !l.Contains(d.ID()) {
		l.Devices = append(l.Devices, d.ID())
	}
	return l
}

// SetDeviceList records the device list of jid (the device's own account
// included), as received from its PEP node. Encrypt uses the devices it
// names; sessions with devices that left it are kept for decrypting late
// messages.
func (d *Device) SetDeviceList(ctx context.Context, jid string, l *DeviceList) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	var ids []uint32
	if l != nil {
		ids = slices.Clone(l.Devices)
	}
	v, _ := json.Marshal(ids)
	return d.cfg.Store.Apply(ctx, []Change{{Bucket: bucketDeviceList, Key: jid, Value: v}})
}

// DeviceList returns the device list last recorded for jid, or an empty
// one.
func (d *Device) DeviceList(ctx context.Context, jid string) (*DeviceList, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	ids, err := d.deviceIDs(ctx, newTxn(d.cfg.Store), jid)
	return &DeviceList{Devices: ids}, err
}

func (d *Device) deviceIDs(ctx context.Context, t *txn, jid string) ([]uint32, error) {
	v, err := t.get(ctx, bucketDeviceList, jid)
	if errors.Is(err, ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var ids []uint32
	if err := json.Unmarshal(v, &ids); err != nil {
		return nil, fmt.Errorf("omemo: stored device list of %s: %w", jid, err)
	}
	return ids, nil
}

// DeviceInfo describes a remote device.
type DeviceInfo struct {
	JID         string
	ID          uint32
	Fingerprint string // empty while its identity key is unknown
	Trust       Trust
	// Listed: in the account's device list. Session: a session exists.
	Listed, Session bool
}

// Devices lists what is known of jid's devices: those in its device list
// and those with an identity key on record.
func (d *Device) Devices(ctx context.Context, jid string) ([]DeviceInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := newTxn(d.cfg.Store)
	ss := &signalStore{t: t, dev: d}
	ids, err := d.deviceIDs(ctx, t, jid)
	if err != nil {
		return nil, err
	}
	infos := map[uint32]*DeviceInfo{}
	for _, id := range ids {
		infos[id] = &DeviceInfo{JID: jid, ID: id, Listed: true}
	}
	keys, err := t.keys(ctx, bucketIdentity, jid+"/")
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		j, id, ok := parseAddrKey(k)
		if !ok || j != jid {
			continue
		}
		if infos[id] == nil {
			infos[id] = &DeviceInfo{JID: jid, ID: id}
		}
	}
	var out []DeviceInfo
	for id, info := range infos {
		a := protocol.NewSignalAddress(jid, id)
		if r, err := ss.loadRemote(ctx, a); err == nil {
			info.Fingerprint = Fingerprint(r.IdentityKey)
			info.Trust = r.Trust
		} else if !errors.Is(err, ErrNotFound) {
			return nil, err
		}
		if info.Session, err = ss.ContainsSession(ctx, a); err != nil {
			return nil, err
		}
		out = append(out, *info)
	}
	slices.SortFunc(out, func(a, b DeviceInfo) int { return int(int64(a.ID) - int64(b.ID)) })
	return out, nil
}

// SetTrust records the decision about a device of jid whose identity key
// has the given fingerprint (as Devices shows it). It fails when the
// device's key is unknown or has another fingerprint, so the decision is
// always about the key the user saw.
func (d *Device) SetTrust(ctx context.Context, jid string, device uint32, fingerprint string, trust Trust) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := newTxn(d.cfg.Store)
	ss := &signalStore{t: t, dev: d}
	r, err := ss.loadRemote(ctx, protocol.NewSignalAddress(jid, device))
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("omemo: no identity key known for %s device %d: fetch its bundle first", jid, device)
	}
	if err != nil {
		return err
	}
	if !strings.EqualFold(strings.ReplaceAll(fingerprint, " ", ""), Fingerprint(r.IdentityKey)) {
		return newError(Untrusted, jid, device, errors.New("the fingerprint is not that of the device's identity key"))
	}
	r.Trust = trust
	v, _ := json.Marshal(r)
	t.put(bucketIdentity, addrKey(jid, device), v)
	return t.commit(ctx)
}

// AddBundle starts a session with a device from its bundle (fetched from
// its PEP node), replacing any session there was. Encrypt does this itself
// through Config.FetchBundle.
func (d *Device) AddBundle(ctx context.Context, jid string, device uint32, b *Bundle) error {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := newTxn(d.cfg.Store)
	if err := d.processBundle(ctx, &signalStore{t: t, dev: d}, jid, device, b); err != nil {
		return err
	}
	return t.commit(ctx)
}

func (d *Device) processBundle(ctx context.Context, ss *signalStore, jid string, device uint32, b *Bundle) (err error) {
	defer recoverInto(&err, jid, device)
	if b == nil {
		return newError(NoSession, jid, device, errors.New("no bundle"))
	}
	if len(b.PreKeys) == 0 {
		return newError(NoSession, jid, device, errors.New("the bundle has no pre-keys left"))
	}
	if len(b.SignedPreKeySignature) != 64 {
		return newError(Corrupt, jid, device, errors.New("bundle: signature is not 64 bytes"))
	}
	pk := b.PreKeys[randUint32(0, uint32(len(b.PreKeys)-1))]
	pkPub, err := decodeKey(pk.Key)
	if err != nil {
		return newError(Corrupt, jid, device, fmt.Errorf("bundle: pre-key %d: %w", pk.ID, err))
	}
	spkPub, err := decodeKey(b.SignedPreKey)
	if err != nil {
		return newError(Corrupt, jid, device, fmt.Errorf("bundle: signed pre-key: %w", err))
	}
	ikPub, err := decodeKey(b.IdentityKey)
	if err != nil {
		return newError(Corrupt, jid, device, fmt.Errorf("bundle: identity key: %w", err))
	}
	if r, err := ss.loadRemote(ctx, protocol.NewSignalAddress(jid, device)); err == nil && r.Trust == Distrusted {
		return newError(Untrusted, jid, device, errors.New("the device is distrusted"))
	}
	bundle := prekey.NewBundle(0, device, optional.NewOptionalUint32(pk.ID), b.SignedPreKeyID,
		pkPub, spkPub, [64]byte(b.SignedPreKeySignature), identity.NewKey(ikPub))
	addr := protocol.NewSignalAddress(jid, device)
	builder := session.NewBuilder(ss, ss, ss, ss, addr, serializer)
	if err := builder.ProcessBundle(ctx, bundle); err != nil {
		return mapError(err, jid, device)
	}
	return nil
}

// mapError turns libsignal's errors into *Error.
func mapError(err error, jid string, device uint32) error {
	var e *Error
	switch {
	case errors.As(err, &e):
		if e.JID == "" && e.Device == 0 {
			e = &Error{Kind: e.Kind, JID: jid, Device: device, Err: e.Err}
		}
		return e
	case errors.Is(err, signalerror.ErrUntrustedIdentity):
		return newError(Untrusted, jid, device, errors.New("its identity key changed"))
	case errors.Is(err, signalerror.ErrOldCounter):
		return newError(Duplicate, jid, device, err)
	case errors.Is(err, signalerror.ErrNoSessionForUser),
		errors.Is(err, signalerror.ErrUninitializedSession),
		errors.Is(err, signalerror.ErrNoSignedPreKey):
		return newError(NoSession, jid, device, err)
	case errors.Is(err, signalerror.ErrNoOneTimeKeyFound):
		// The pre-key was used, by this message before (a replay) or by
		// another sender.
		return newError(Duplicate, jid, device, fmt.Errorf("the message's one-time pre-key was already used: %w", err))
	case errors.Is(err, signalerror.ErrInvalidSignature),
		errors.Is(err, signalerror.ErrBadMAC),
		errors.Is(err, signalerror.ErrNoValidSessions),
		errors.Is(err, signalerror.ErrTooFarIntoFuture),
		errors.Is(err, signalerror.ErrWrongMessageVersion),
		errors.Is(err, signalerror.ErrOldMessageVersion),
		errors.Is(err, signalerror.ErrUnknownMessageVersion),
		errors.Is(err, signalerror.ErrIncompleteMessage),
		errors.Is(err, ecc.ErrBadKeyType):
		return newError(Corrupt, jid, device, err)
	}
	return fmt.Errorf("omemo: %s device %d: %w", jid, device, err)
}

// recoverInto turns a panic inside libsignal (which trusts its input in
// places) into a Corrupt error.
func recoverInto(err *error, jid string, device uint32) {
	if p := recover(); p != nil {
		*err = newError(Corrupt, jid, device, fmt.Errorf("rejected by libsignal: %v", p))
	}
}

// trusted reports whether a device may be encrypted to under the policy.
func (d *Device) trusted(ctx context.Context, ss *signalStore, jid string, device uint32, verified map[string]bool) error {
	r, err := ss.loadRemote(ctx, protocol.NewSignalAddress(jid, device))
	if errors.Is(err, ErrNotFound) {
		return newError(NoSession, jid, device, errors.New("identity key unknown"))
	}
	if err != nil {
		return err
	}
	switch r.Trust {
	case Verified:
		return nil
	case Distrusted:
		return newError(Untrusted, jid, device, errors.New("the device is distrusted"))
	}
	if d.cfg.Policy == ManualTrust {
		return newError(Untrusted, jid, device, errors.New("the device is not verified"))
	}
	v, ok := verified[jid]
	if !ok {
		v, err = d.anyVerified(ctx, ss, jid)
		if err != nil {
			return err
		}
		verified[jid] = v
	}
	if v {
		return newError(Untrusted, jid, device, errors.New("a device of the account is verified and this one is not"))
	}
	return nil
}

func (d *Device) anyVerified(ctx context.Context, ss *signalStore, jid string) (bool, error) {
	keys, err := ss.t.keys(ctx, bucketIdentity, jid+"/")
	if err != nil {
		return false, err
	}
	for _, k := range keys {
		j, id, ok := parseAddrKey(k)
		if !ok || j != jid {
			continue
		}
		r, err := ss.loadRemote(ctx, protocol.NewSignalAddress(j, id))
		if err != nil {
			return false, err
		}
		if r.Trust == Verified {
			return true, nil
		}
	}
	return false, nil
}

// Encrypt encrypts plaintext (the message body) for every usable device of
// each recipient (bare JIDs) and for the other devices of the device's own
// account, starting sessions from bundles where needed.
//
// It fails with an *Error when a recipient has no usable device: none in
// its device list (give it to SetDeviceList), no session and no bundle
// (NoSession), or only untrusted ones (Untrusted). Devices that cannot be
// used are skipped (and logged) as long as every recipient keeps one.
func (d *Device) Encrypt(ctx context.Context, plaintext []byte, to ...string) (*Encrypted, error) {
	key := make([]byte, 16)
	iv := make([]byte, 12)
	rand.Read(key)
	rand.Read(iv)
	block, _ := aes.NewCipher(key)
	gcm, _ := cipher.NewGCM(block)
	sealed := gcm.Seal(nil, iv, plaintext, nil)
	ct, tag := sealed[:len(plaintext)], sealed[len(plaintext):]
	e, err := d.encrypt(ctx, append(key, tag...), nil, to)
	if err != nil {
		return nil, err
	}
	e.IV = iv
	e.Payload = ct
	return e, nil
}

// KeyTransport makes a key transport element: a fresh 16-byte key and an
// IV, encrypted like a message but without payload, for protocols that
// need a shared key (XEP-0384 0.3 §4.6). It returns the element and the
// key; the IV is e.IV.
func (d *Device) KeyTransport(ctx context.Context, to ...string) (*Encrypted, []byte, error) {
	key := make([]byte, 16)
	iv := make([]byte, 12)
	rand.Read(key)
	rand.Read(iv)
	e, err := d.encrypt(ctx, key, nil, to)
	if err != nil {
		return nil, nil, err
	}
	e.IV = iv
	return e, key, nil
}

// EmptyMessage makes a key transport element for one device only. Send it
// after Decrypt reports Message.PreKey when no reply goes back soon: it
// tells the sender the session is established, so it stops sending
// pre-key messages (python-omemo and Conversations do the same).
func (d *Device) EmptyMessage(ctx context.Context, jid string, device uint32) (*Encrypted, error) {
	key := make([]byte, 16)
	iv := make([]byte, 12)
	rand.Read(key)
	rand.Read(iv)
	e, err := d.encrypt(ctx, key, &remote{jid, device}, nil)
	if err != nil {
		return nil, err
	}
	e.IV = iv
	return e, nil
}

type remote struct {
	jid    string
	device uint32
}

func (d *Device) encrypt(ctx context.Context, km []byte, only *remote, to []string) (*Encrypted, error) {
	jids := []string{}
	for _, j := range to {
		if j != d.JID() && !slices.Contains(jids, j) {
			jids = append(jids, j)
		}
	}
	jids = append(jids, d.JID())
	// Bundles are fetched before the device is locked: fetching goes over
	// the network, and the device must meanwhile answer requests for its
	// own bundle.
	var bundles map[remote]fetched
	if only == nil && d.cfg.FetchBundle != nil {
		missing, err := d.missingSessions(ctx, jids)
		if err != nil {
			return nil, err
		}
		bundles = make(map[remote]fetched, len(missing))
		for _, r := range missing {
			b, err := d.cfg.FetchBundle(ctx, r.jid, r.device)
			bundles[r] = fetched{b, err}
		}
	}

	d.mu.Lock()
	defer d.mu.Unlock()
	t := newTxn(d.cfg.Store)
	ss := &signalStore{t: t, dev: d}
	e := &Encrypted{SID: d.ID()}
	verified := map[string]bool{}
	log := d.cfg.Logger
	if only != nil {
		if err := d.trusted(ctx, ss, only.jid, only.device, verified); err != nil {
			return nil, err
		}
		k, err := d.encryptKey(ctx, ss, only.jid, only.device, km)
		if err != nil {
			return nil, err
		}
		e.Keys = append(e.Keys, k)
		return e, t.commit(ctx)
	}
	for _, jid := range jids {
		ids, err := d.deviceIDs(ctx, t, jid)
		if err != nil {
			return nil, err
		}
		n := 0
		var why error
		for _, id := range ids {
			if jid == d.JID() && id == d.ID() {
				continue
			}
			k, err := d.encryptTo(ctx, ss, jid, id, km, verified, bundles)
			if err != nil {
				var oe *Error
				if !errors.As(err, &oe) {
					return nil, err // the store failed
				}
				log.Warn("omemo: device skipped", "jid", jid, "device", id, "err", err)
				why = err
				continue
			}
			e.Keys = append(e.Keys, k)
			n++
		}
		if n == 0 && jid != d.JID() {
			if why == nil {
				why = newError(NoSession, jid, 0, errors.New("no device list, or no device in it"))
			}
			return nil, why
		}
	}
	return e, t.commit(ctx)
}

type fetched struct {
	b   *Bundle
	err error
}

// missingSessions lists the listed devices of jids without a session.
func (d *Device) missingSessions(ctx context.Context, jids []string) ([]remote, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	t := newTxn(d.cfg.Store)
	ss := &signalStore{t: t, dev: d}
	var missing []remote
	for _, jid := range jids {
		ids, err := d.deviceIDs(ctx, t, jid)
		if err != nil {
			return nil, err
		}
		for _, id := range ids {
			if jid == d.JID() && id == d.ID() {
				continue
			}
			ok, err := ss.ContainsSession(ctx, protocol.NewSignalAddress(jid, id))
			if err != nil {
				return nil, err
			}
			if !ok {
				missing = append(missing, remote{jid, id})
			}
		}
	}
	return missing, nil
}

// encryptTo encrypts km to one device, starting a session from its bundle
// when there is none.
func (d *Device) encryptTo(ctx context.Context, ss *signalStore, jid string, id uint32, km []byte, verified map[string]bool, bundles map[remote]fetched) (Key, error) {
	addr := protocol.NewSignalAddress(jid, id)
	ok, err := ss.ContainsSession(ctx, addr)
	if err != nil {
		return Key{}, err
	}
	if !ok {
		f, fetchedOK := bundles[remote{jid, id}]
		switch {
		case !fetchedOK:
			return Key{}, newError(NoSession, jid, id, errors.New("no session, and no bundle fetched"))
		case f.err != nil:
			return Key{}, newError(NoSession, jid, id, fmt.Errorf("fetching the bundle: %w", f.err))
		}
		if err := d.processBundle(ctx, ss, jid, id, f.b); err != nil {
			return Key{}, err
		}
	}
	if err := d.trusted(ctx, ss, jid, id, verified); err != nil {
		return Key{}, err
	}
	return d.encryptKey(ctx, ss, jid, id, km)
}

func (d *Device) encryptKey(ctx context.Context, ss *signalStore, jid string, id uint32, km []byte) (k Key, err error) {
	defer recoverInto(&err, jid, id)
	addr := protocol.NewSignalAddress(jid, id)
	if ok, err := ss.ContainsSession(ctx, addr); err != nil {
		return Key{}, err
	} else if !ok {
		return Key{}, newError(NoSession, jid, id, nil)
	}
	c := session.NewCipher(session.NewBuilder(ss, ss, ss, ss, addr, serializer), addr)
	msg, err := c.Encrypt(ctx, km)
	if err != nil {
		return Key{}, mapError(err, jid, id)
	}
	return Key{RID: id, PreKey: msg.Type() == protocol.PREKEY_TYPE, Data: msg.Serialize()}, nil
}

// Message is a decrypted message.
type Message struct {
	// JID and Device are the sender.
	JID    string
	Device uint32
	// Fingerprint and Trust are those of the sender's identity key.
	// Under BlindTrust, messages from Undecided devices are accepted;
	// only Distrusted ones are refused.
	Fingerprint string
	Trust       Trust

	// Plaintext is the message body; nil for a key transport element
	// (an empty message).
	Plaintext []byte
	// Key and IV are the transported key and IV of a key transport
	// element.
	Key, IV []byte

	// PreKey reports a pre-key message: it started (or confirmed) a
	// session. If no reply goes back soon, send EmptyMessage to the
	// sender's device.
	PreKey bool
	// BundleChanged reports that a one-time pre-key was used and
	// replaced: publish Bundle again.
	BundleChanged bool
}

// Decrypt decrypts an encrypted element sent by jid (a bare JID). A
// failure is an *Error: NotForThisDevice, NoSession, Untrusted, Duplicate
// or Corrupt. A failed Decrypt changes no state.
func (d *Device) Decrypt(ctx context.Context, jid string, e *Encrypted) (_ *Message, err error) {
	if e == nil {
		return nil, corrupt("no encrypted element")
	}
	if jid == d.JID() && e.SID == d.ID() {
		return nil, newError(NotForThisDevice, jid, e.SID, errors.New("the message was sent by this device"))
	}
	k := e.KeyFor(d.ID())
	if k == nil {
		return nil, newError(NotForThisDevice, jid, e.SID, nil)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	defer d.keepLocal(&err)()
	d.preKeysUsed = 0
	t := newTxn(d.cfg.Store)
	ss := &signalStore{t: t, dev: d}
	km, err := d.decryptKey(ctx, ss, jid, e.SID, k)
	if err != nil {
		return nil, err
	}
	r, err := ss.loadRemote(ctx, protocol.NewSignalAddress(jid, e.SID))
	if err != nil {
		return nil, fmt.Errorf("omemo: identity of %s device %d: %w", jid, e.SID, err)
	}
	if r.Trust == Distrusted {
		return nil, newError(Untrusted, jid, e.SID, errors.New("the device is distrusted"))
	}
	m := &Message{
		JID: jid, Device: e.SID,
		Fingerprint: Fingerprint(r.IdentityKey), Trust: r.Trust,
		PreKey: k.PreKey,
	}
	var key, tag []byte
	switch len(km) {
	case 32:
		key, tag = km[:16], km[16:]
	case 16:
		key = km // a key transport element, or the tag is in the payload (old Conversations)
	default:
		return nil, newError(Corrupt, jid, e.SID, fmt.Errorf("key material of %d bytes", len(km)))
	}
	if e.Payload == nil {
		m.Key, m.IV = key, e.IV
	} else {
		if len(e.IV) != 12 && len(e.IV) != 16 {
			return nil, newError(Corrupt, jid, e.SID, fmt.Errorf("iv of %d bytes", len(e.IV)))
		}
		block, _ := aes.NewCipher(key)
		gcm, err := cipher.NewGCMWithNonceSize(block, len(e.IV))
		if err != nil {
			return nil, newError(Corrupt, jid, e.SID, err)
		}
		ct := append(slices.Clip(e.Payload), tag...)
		pt, err := gcm.Open(nil, e.IV, ct, nil)
		if err != nil {
			return nil, newError(Corrupt, jid, e.SID, errors.New("the payload fails authentication"))
		}
		if pt == nil {
			pt = []byte{}
		}
		m.Plaintext = pt
	}
	if d.preKeysUsed > 0 {
		if _, err := d.refill(ctx, t); err != nil {
			return nil, err
		}
		m.BundleChanged = true
	}
	if err := t.commit(ctx); err != nil {
		return nil, err
	}
	return m, nil
}

func (d *Device) decryptKey(ctx context.Context, ss *signalStore, jid string, sid uint32, k *Key) (km []byte, err error) {
	defer recoverInto(&err, jid, sid)
	addr := protocol.NewSignalAddress(jid, sid)
	c := session.NewCipher(session.NewBuilder(ss, ss, ss, ss, addr, serializer), addr)
	if k.PreKey {
		msg, err := parsePreKeyMessage(k.Data)
		if err != nil {
			return nil, mapError(err, jid, sid)
		}
		km, err = c.DecryptMessage(ctx, msg)
		if err != nil {
			return nil, mapError(err, jid, sid)
		}
		return km, nil
	}
	msg, err := parseSignalMessage(k.Data)
	if err != nil {
		return nil, mapError(err, jid, sid)
	}
	if ok, err := ss.ContainsSession(ctx, addr); err != nil {
		return nil, err
	} else if !ok {
		return nil, newError(NoSession, jid, sid, errors.New("a message of a session this device does not have"))
	}
	km, err = c.Decrypt(ctx, msg)
	if err != nil {
		return nil, mapError(err, jid, sid)
	}
	return km, nil
}

func checkKey(name string, k []byte) error {
	if len(k) != KeySize || k[0] != ecc.DjbType {
		return corrupt("%s is not a Curve25519 public key (%d bytes)", name, len(k))
	}
	return nil
}

// parseSignalMessage checks what libsignal would not before handing the
// bytes to it.
func parseSignalMessage(b []byte) (*protocol.SignalMessage, error) {
	if len(b) < 1+protocol.MacLength+1 {
		return nil, corrupt("message of %d bytes", len(b))
	}
	st, err := serializer.SignalMessage.Deserialize(b)
	if err != nil {
		return nil, corrupt("message: %v", err)
	}
	if err := checkKey("ratchet key", st.RatchetKey); err != nil {
		return nil, err
	}
	if len(st.CipherText) == 0 || len(st.CipherText)%aes.BlockSize != 0 {
		return nil, corrupt("message: ciphertext of %d bytes", len(st.CipherText))
	}
	return protocol.NewSignalMessageFromStruct(st, serializer.SignalMessage)
}

func parsePreKeyMessage(b []byte) (*protocol.PreKeySignalMessage, error) {
	if len(b) < 2 {
		return nil, corrupt("pre-key message of %d bytes", len(b))
	}
	st, err := serializer.PreKeySignalMessage.Deserialize(b)
	if err != nil {
		return nil, corrupt("pre-key message: %v", err)
	}
	if err := checkKey("base key", st.BaseKey); err != nil {
		return nil, err
	}
	if err := checkKey("identity key", st.IdentityKey); err != nil {
		return nil, err
	}
	if _, err := parseSignalMessage(st.Message); err != nil {
		return nil, err
	}
	return protocol.NewPreKeySignalMessageFromStruct(st, serializer.PreKeySignalMessage, serializer.SignalMessage)
}
