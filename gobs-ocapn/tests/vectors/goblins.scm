;;; Known answers computed by Spritely Goblins 0.18 itself, for gobs-ocapn's tests
;;; (tests/syrup_references.rs, tests/ocapn_references.rs). Every vector below is produced
;;; by a Goblins procedure or actor — its Syrup encoder, its crypto module, a CapTP
;;; coordinator, the tcp-tls netlayer, its OCapN URI code — never by a formula written
;;; here.
;;;
;;; Rerun it (from the repository root, with Goblins installed by
;;; shared/tools/goblins/install.sh):
;;;
;;;   . /opt/goblins/env.sh
;;;   GUILE_WARN_DEPRECATED=no guile --no-auto-compile gobs-ocapn/tests/vectors/goblins.scm \
;;;     > gobs-ocapn/tests/vectors/goblins.txt
;;;
;;; The output is deterministic (fixed keys, a fixed certificate, canonical Syrup), so the
;;; test `goblins_still_computes_the_committed_vectors` reruns this script and compares.
;;;
;;; Output: one vector a line, `<name> <hex of the bytes>`; `#` lines are comments.
;;; Inputs it reads beside itself: goblins-tls-cert.pem and goblins-tls-key.pem (made once
;;; by Goblins' generate-tls-private-key and generate-tls-certificate; a test-only identity).

(use-modules (goblins)
             (goblins abstract-types)
             (goblins contrib syrup)
             (goblins utils crypto)
             (goblins utils hashmap)
             (goblins utils ghash)
             (goblins ocapn ids)
             (goblins ocapn captp-types)
             (goblins ocapn netlayer tcp-tls)
             (gnutls)
             (ice-9 binary-ports)
             (ice-9 format)
             (ice-9 threads)
             (rnrs bytevectors))

(define here (dirname (current-filename)))

(define (hex bv)
  (string-concatenate
   (map (lambda (b) (format #f "~2,'0x" b)) (bytevector->u8-list bv))))

(define (hex->bytes s)
  (u8-list->bytevector
   (let lp ((i 0))
     (if (>= i (string-length s))
         '()
         (cons (string->number (substring s i (+ i 2)) 16) (lp (+ i 2)))))))

(define (emit name bytes)
  (format #t "~a ~a~%" name (hex bytes)))

(define (emit-syrup name value)
  (emit name (syrup-encode value #:marshallers marshallers)))

(define (read-file name)
  (call-with-input-file (string-append here "/" name) get-bytevector-all #:binary #t))

;; Runs THUNK in VAT and waits for the promise it returns to settle.
(define (resolve vat thunk)
  (define m (make-mutex))
  (define cv (make-condition-variable))
  (define result #f)
  (define (done! r)
    (with-mutex m (set! result r) (signal-condition-variable cv)))
  (with-vat vat
    (on (thunk)
        (lambda (v) (done! (list 'ok v)))
        #:catch (lambda (e) (done! (list 'error e)))))
  (with-mutex m
    (let lp () (unless result (wait-condition-variable cv m) (lp))))
  (if (eq? (car result) 'ok)
      (cadr result)
      (error "a Goblins promise broke while computing vectors" (cadr result))))

(format #t "# Computed by Spritely Goblins ~a with gobs-ocapn/tests/vectors/goblins.scm; do not edit.~%"
        "0.18")

;;; Syrup: Goblins' encoder (goblins contrib syrup), one value of each kind.
;;; The names are the keys tests/syrup_references.rs builds its own values under.

(emit-syrup "syrup:true" #t)
(emit-syrup "syrup:false" #f)
(emit-syrup "syrup:int-0" 0)
(emit-syrup "syrup:int-42" 42)
(emit-syrup "syrup:int-minus-42" -42)
(emit-syrup "syrup:int-2^63-1" (- (expt 2 63) 1))
(emit-syrup "syrup:int-2^64" (expt 2 64))
(emit-syrup "syrup:int-minus-2^64" (- (expt 2 64)))
(emit-syrup "syrup:int-2^70" (expt 2 70))
(emit-syrup "syrup:int-2^127-1" (- (expt 2 127) 1))
(emit-syrup "syrup:int-minus-2^127" (- (expt 2 127)))
(emit-syrup "syrup:bytes-empty" #vu8())
(emit-syrup "syrup:bytes-bar" (string->utf8 "bar"))
(emit-syrup "syrup:bytes-binary" #vu8(0 255 10 34 58))
(emit-syrup "syrup:string-empty" "")
(emit-syrup "syrup:string-foo" "foo")
(emit-syrup "syrup:string-bjorn" "björn")
(emit-syrup "syrup:string-bear" "熊")
(emit-syrup "syrup:string-quote-newline" "say \"hi\"\n")
(emit-syrup "syrup:symbol-empty" (string->symbol ""))
(emit-syrup "syrup:symbol-fetch" 'fetch)
(emit-syrup "syrup:symbol-hamta" 'hämta)
(emit-syrup "syrup:symbol-op-deliver" 'op:deliver)
(emit-syrup "syrup:double-1.5" 1.5)
(emit-syrup "syrup:double-minus-34.5" -34.5)
(emit-syrup "syrup:double-0.1" 0.1)
(emit-syrup "syrup:double-minus-zero" -0.0)
(emit-syrup "syrup:double-inf" +inf.0)
(emit-syrup "syrup:double-nan" +nan.0)
(emit-syrup "syrup:single-1.5" (make-pseudosingle 1.5))
(emit-syrup "syrup:single-minus-0.25" (make-pseudosingle -0.25))
(emit-syrup "syrup:list-empty" '())
(emit-syrup "syrup:list-mixed" (list "foo" 123 #t (string->utf8 "bar")))
(emit-syrup "syrup:list-nested" (list 1 (list 2 (list 3)) '()))
(emit-syrup "syrup:dict-empty" (make-hashmap))
(emit-syrup "syrup:dict-hints" (hashmap ("port" "22045") ("host" "127.0.0.1")))
;; Byte order is not name order: "10'zzzzzzzzzz" sorts before "4'abcd".
(emit-syrup "syrup:dict-length-before-name" (hashmap ('abcd 1) ('zzzzzzzzzz 2)))
;; Nor number order: "1-" < "10+" < "4+".
(emit-syrup "syrup:dict-int-keys" (hashmap (4 'four) (10 'ten) (-1 'minus-one)))
;; Nor kind order: string `"` < symbol `'` < bytes `:`, and `+` after all of them.
(emit-syrup "syrup:dict-kinds"
            (hashmap (3 'int) ('abc 'symbol) ("abc" 'string) ((string->utf8 "abc") 'bytes)))
(emit-syrup "syrup:dict-compound-keys"
            (hashmap ((list 1 2) 'list) ((make-tagged* 'pt 1) 'record) (#t 'true)))
(emit-syrup "syrup:set-empty" (make-gset))
(emit-syrup "syrup:set-strings" (make-gset "napkin" "cookie" "milk"))
(emit-syrup "syrup:set-ints" (make-gset 4 10 -1))
(emit-syrup "syrup:record-export" (make-tagged* 'desc:export 0))
(emit-syrup "syrup:record-no-fields" (make-tagged 'op:ping '()))
(emit-syrup "syrup:record-string-label" (make-tagged* "date" 2020 5 1 14 8 11))
(emit-syrup "syrup:record-nested"
            (make-tagged* 'outer (make-tagged* 'inner "x") (list (make-tagged* 'leaf))))
;; The Syrup repository's test-data/zoo.bin, rebuilt here as Python's _test_syrup builds it.
(emit-syrup "syrup:zoo"
            (make-tagged* (string->utf8 "zoo") "The Grand Menagerie"
                          (list (hashmap ('species (string->utf8 "cat"))
                                         ('name "Tabatha")
                                         ('age 12)
                                         ('weight 8.2)
                                         ('alive? #t)
                                         ('eats (make-gset (string->utf8 "mice")
                                                           (string->utf8 "fish")
                                                           (string->utf8 "kibble"))))
                                (hashmap ('species (string->utf8 "monkey"))
                                         ('name "George")
                                         ('age 6)
                                         ('weight 17.24)
                                         ('alive? #f)
                                         ('eats (make-gset (string->utf8 "bananas")
                                                           (string->utf8 "insects"))))
                                (hashmap ('species (string->utf8 "ghost"))
                                         ('name "Casper")
                                         ('age -12)
                                         ('weight -34.5)
                                         ('alive? #f)
                                         ('eats (make-gset))))))
;; CapTP messages through Goblins' own record marshallers (captp-types).
(emit-syrup "syrup:op-deliver"
            (op:deliver (desc:export 0) (list 'fetch (string->utf8 "abc")) 1
                        (desc:import-object 2)))
(emit-syrup "syrup:op-deliver-no-answer"
            (op:deliver (desc:export 5) (list "hi" 3) #f #f))
(emit-syrup "syrup:op-gc-exports" (op:gc-exports (list 1 2) (list 1 3)))

;;; Locators: Goblins' ocapn-peer and ocapn-sturdyref records and their URIs (goblins ocapn ids).

(define peer
  (make-ocapn-peer 'tcp-tls "hz4g3bvtlcstzmqgeyjtdxoctr6nkrxbbvn5qh7ep2cz2kpcjuoq"
                   (hashmap ("host" "127.0.0.1") ("port" "9045"))))
;; Swiss bytes whose base64url uses both `-` and `_`.
(define sturdyref (make-ocapn-sturdyref peer #vu8(251 239 190 255 0 1 2)))
(emit-syrup "locator:peer" peer)
(emit "locator:peer-uri" (string->utf8 (ocapn-id->string peer)))
(emit-syrup "locator:sturdyref" sturdyref)
(emit "locator:sturdyref-uri" (string->utf8 (ocapn-id->string sturdyref)))
;; A hint that needs escaping in a URI.
(define unix-peer (make-ocapn-peer 'unix "abc" (hashmap ("path" "/tmp/gobs dir/node.sock"))))
(emit-syrup "locator:escaped-peer" unix-peer)
(emit "locator:escaped-peer-uri" (string->utf8 (ocapn-id->string unix-peer)))
;; How Goblins reads the URI gobs writes for `sturdyref` (the test checks gobs writes
;; exactly this string).
(define gobs-uri
  "ocapn://hz4g3bvtlcstzmqgeyjtdxoctr6nkrxbbvn5qh7ep2cz2kpcjuoq.tcp-tls/s/----_wABAg?host=127.0.0.1&port=9045")
(emit "locator:gobs-sturdyref-uri" (string->utf8 gobs-uri))
(emit-syrup "locator:gobs-sturdyref-uri-read" (string->ocapn-id gobs-uri))
;; What Goblins makes of a URI written by hand: the record a peer receives for it.
(define hand-written-uri "ocapn://abc.tcp-testing-only/s/c2VjcmV0?host=127.0.0.1&port=22045")
(emit "locator:hand-written-uri" (string->utf8 hand-written-uri))
(emit-syrup "locator:hand-written-sturdyref" (string->ocapn-id hand-written-uri))

;;; Keys and signatures: (goblins utils crypto). The two key pairs were made once by
;;; generate-key-pair and printed with private-key->data; k is the 32-byte Ed25519 seed,
;;; x the public key GnuTLS derived from it.

(define key-a
  (data->private-key
   (list "EdDSA (Ed25519)"
         (hex->bytes "35d5697aca8bd632cec083075af12e4eea8dad78699e8f71a2058f25dcedc3ec")
         #vu8()
         (hex->bytes "6208e79f956325d1e3d2481a3db2b3bc47deec344caf3b659e8acea3a1868f14"))))
(define key-b
  (data->private-key
   (list "EdDSA (Ed25519)"
         (hex->bytes "f2938a48bbe76121eab884a340b501038b5f23e062ee8216c8236a3c5b498b4d")
         #vu8()
         (hex->bytes "6a7438f86b15c6ed8656f784488f75c57f601da00ffb16a5f0ab51279653eea4"))))

(emit "key:a-seed" (list-ref (private-key->data key-a) 3))
(emit "key:b-seed" (list-ref (private-key->data key-b) 3))
(emit-syrup "key:a-public" (key-pair->public-key key-a))
(emit-syrup "key:b-public" (key-pair->public-key key-b))

;;; Side ids, session ids and the location signature: a CapTP coordinator per side
;;; (captp.scm's ^coordinator, private, so reached with @@), as a session computes them.

(define ^coordinator (@@ (goblins ocapn captp) ^coordinator))
(define vat (spawn-vat))

(define (coordinator key-pair remote-key-pair)
  (with-vat vat
    (let ((c (spawn ^coordinator #f peer #f #f #:handoff-key-pair key-pair)))
      ($ c 'install-remote-key (key-pair->public-key remote-key-pair) #f peer)
      c)))

(define coord-a (coordinator key-a key-b))
(define coord-b (coordinator key-b key-a))
(emit "session:a-side-id" (with-vat vat ($ coord-a 'get-our-side-name)))
(emit "session:b-side-id" (with-vat vat ($ coord-b 'get-our-side-name)))
(emit "session:id-at-a" (with-vat vat ($ coord-a 'get-session-name)))
(emit "session:id-at-b" (with-vat vat ($ coord-b 'get-session-name)))
;; What op:start-session carries: a's signature over <my-location peer>.
(define location-sig (resolve vat (lambda () ($ coord-a 'get-location-sig))))
(emit-syrup "session:a-location-sig" location-sig)
;; The whole op:start-session a sends, as captp.scm builds it (its captp-version is private).
(emit-syrup "session:a-start-session"
            (op:start-session (@@ (goblins ocapn captp) captp-version)
                              (key-pair->public-key key-a) peer location-sig))

;;; A handoff certificate signed as captp.scm's make-handoff-base-cert signs it: a, the
;;; gifter, gives b (the receiver) a gift at peer, in the gifter–exporter session a–b.

(define handoff-give
  (desc:handoff-give (key-pair->public-key key-b) peer
                     (with-vat vat ($ coord-a 'get-session-name))
                     (with-vat vat ($ coord-a 'get-our-side-name))
                     (u8-list->bytevector (iota 32))))
(emit-syrup "handoff:give-envelope"
            (desc:sig-envelope handoff-give
                               (sign (syrup-encode handoff-give #:marshallers marshallers)
                                     (key-pair->private-key key-a))))

;;; tcp-tls: the designator Goblins' netlayer announces for the committed certificate.

(define netlayer
  (with-vat vat
    (spawn ^tcp-tls-netlayer "127.0.0.1"
           #:key (read-file "goblins-tls-key.pem")
           #:cert (read-file "goblins-tls-cert.pem"))))
(emit "tcp-tls:designator"
      (string->utf8 (ocapn-peer-designator (with-vat vat ($ netlayer 'our-location)))))
