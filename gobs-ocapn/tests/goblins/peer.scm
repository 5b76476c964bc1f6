;;; A Goblins 0.18 peer for gobs' interop tests (gobs-ocapn/tests/goblins_*.rs).
;;;
;;;   guile peer.scm STATE-DIR
;;;
;;; Listens on tcp-tls at 127.0.0.1 with the TLS key, certificate and port kept in
;;; STATE-DIR (made on first start), so a restarted peer has the same sturdyrefs. Prints
;;; "ready NAME URI" for each object it offers (fixed swiss numbers), then "ready".
;;; Reads one command a line on standard input and answers each with one line
;;; "ID ok HEX", "ID err HEX" or "ID fail TEXT", HEX being the Syrup of the value (Goblins'
;;; own encoder), so the test compares values, not printed forms. Values are hex Syrup too.

(use-modules (goblins)
             (goblins actor-lib methods)
             (goblins actor-lib joiners)
             (goblins ocapn captp)
             (goblins ocapn ids)
             (goblins ocapn netlayer tcp-tls)
             (goblins contrib syrup)
             (goblins utils hashmap)
             (gnutls)
             (ice-9 binary-ports)
             (ice-9 match)
             (ice-9 rdelim)
             (rnrs bytevectors)
             (srfi srfi-1)
             (srfi srfi-11))

;; Every TLS session Goblins makes stays reachable until this peer exits. With guile-gnutls
;; 4.0.0 (the shared install's) the collector can free a session whose record port Goblins
;; still reads: the session's data is reused, the next read that would block raises
;; "Wrong type: <whatever took the memory>" inside `port-read`, and Goblins' reader dies with
;; "Attempt to suspend fiber within continuation barrier". Under load a restart test hit it
;; in 6 runs of 428; with collection off, 0 of 210; with this, 0 of 240. gobs plays no part
;; (the failing call is guile-gnutls' read on EAGAIN). A peer lives for one test: the few
;; sessions it keeps cost nothing.
(define live-tls-sessions '())
(let* ((gnutls (resolve-module '(gnutls)))
       (make-session (module-ref gnutls 'make-session)))
  (module-set! gnutls 'make-session
               (lambda args
                 (let ((s (apply make-session args)))
                   (set! live-tls-sessions (cons s live-tls-sessions))
                   s))))

(define state-dir (cadr (command-line)))
(define (state-file name) (string-append state-dir "/" name))

;;; ---- hex Syrup ------------------------------------------------------------------------

(define (bv->hex bv)
  (string-concatenate
   (map (lambda (b) (string-pad (number->string b 16) 2 #\0))
        (bytevector->u8-list bv))))

(define (hex->bv hex)
  (u8-list->bytevector
   (let lp ((i 0))
     (if (>= i (string-length hex))
         '()
         (cons (string->number (substring hex i (+ i 2)) 16) (lp (+ i 2)))))))

(define (value->hex v) (bv->hex (syrup-encode v)))
(define (hex->value hex) (syrup-decode (hex->bv hex)))

;;; ---- identity kept across restarts ----------------------------------------------------

(define (slurp path) (call-with-input-file path get-bytevector-all #:binary #t))
(define (spit path bv) (call-with-output-file path (lambda (p) (put-bytevector p bv)) #:binary #t))

(define (kept name make)
  (let ((path (state-file name)))
    (if (file-exists? path)
        (slurp path)
        (let ((bv (make))) (spit path bv) bv))))

;; RSA 2048 rather than Goblins' default 4096: the same netlayer, a faster first start.
(define tls-key
  (kept "key.pem"
        (lambda ()
          (export-x509-private-key (generate-x509-private-key pk-algorithm/rsa 2048 '())
                                   x509-certificate-format/pem))))
(define tls-cert (kept "cert.pem" (lambda () (generate-tls-certificate tls-key))))
(define kept-port
  (and (file-exists? (state-file "port"))
       (string->number (utf8->string (slurp (state-file "port"))))))

;;; ---- output: one line per event, from the vat only ------------------------------------

(define (say . parts)
  (display (string-join (map (lambda (p) (if (string? p) p (format #f "~a" p))) parts) " "))
  (newline)
  (force-output))

(define (say-outcome id)
  (values
   (lambda (v)
     (catch #t
       (lambda () (say id "ok" (value->hex v)))
       (lambda _ (say id "ok-ref" (if (live-refr? v) "refr" (format #f "~s" v))))))
   (lambda (e)
     (catch #t
       (lambda () (say id "err" (value->hex e)))
       (lambda _ (say id "fail" (format #f "~s" e)))))))

;;; ---- the objects gobs calls -----------------------------------------------------------

;; Answers with what it is given.
(define (^echo bcom)
  (methods
   [(echo v) v]
   [(echo-all . vs) vs]
   ;; An answer that never comes: it breaks when the session to the caller ends.
   [(never) (let-values (((p r) (spawn-promise-and-resolver))) p)]))

;; Throws: Goblins breaks the caller's promise with <exn:fail:mystery>.
(define (^thrower bcom)
  (methods
   [(fail msg) (error msg)]))

;; Calls back a reference it is given: references passed gobs -> Goblins and called back.
(define (^caller bcom)
  (methods
   [(call-back ref method . args) (apply <- ref method args)]
   ;; A promise for (call-back ...) inside a list: gobs receives a Goblins promise.
   [(promise-for ref method . args) (list (apply <- ref method args))]))

;; Counts calls; a fresh object per `make`, for GC.
(define (^counter bcom)
  (define n 0)
  (methods
   [(next) (set! n (+ n 1)) n]
   [(make) (spawn ^echo)]))

(define swiss-of
  `((echo . ,(string->utf8 "goblins-echo-swiss-number-000001"))
    (thrower . ,(string->utf8 "goblins-thrower-swiss-number-002"))
    (caller . ,(string->utf8 "goblins-caller-swiss-number-0003"))
    (counter . ,(string->utf8 "goblins-counter-swiss-number-004"))))

;;; ---- the node -------------------------------------------------------------------------

(define vat (spawn-vat #:name "goblins-peer"))

(define-values (netlayer mycapn)
  (with-vat vat
    (let* ((nl (spawn ^tcp-tls-netlayer "127.0.0.1" #:port kept-port
                      #:key tls-key #:cert tls-cert))
           (capn (spawn-mycapn nl)))
      (values nl capn))))

(define objects
  (with-vat vat
    `((echo . ,(spawn ^echo))
      (thrower . ,(spawn ^thrower))
      (caller . ,(spawn ^caller))
      (counter . ,(spawn ^counter)))))

;; A fresh enlivening per command: after either side restarts, the next command finds
;; the object again (mycapn reuses a live session to the same peer).
(define (enliven uri) (<- mycapn 'enliven (string->ocapn-id uri)))

;; Resolvers of the promises "relay" handed out, by command id.
(define pending (make-hash-table))

(define (decode-args hex) (if (string=? hex "-") '() (hex->value hex)))

(define (outcome-of id promise)
  (call-with-values (lambda () (say-outcome id))
    (lambda (ok err) (on promise ok #:catch err))))

(define (run-command line)
  (match (string-split line #\space)
    ;; call ID URI METHOD ARGS: a by-name call on a gobs object.
    [("call" id uri method args)
     (outcome-of id (apply <- (enliven uri) (string->symbol method) (decode-args args)))]
    ;; many ID N URI METHOD ARGS: N calls, 100 at a time, once the object is enlivened
    ;; (Goblins 0.18 never lets go of the answers of messages pipelined on a fetch);
    ;; answers the last call's answer.
    [("many" id n uri method args)
     (let ((argv (decode-args args)))
       (on (enliven uri)
           (lambda (target)
             (let lp ((left (string->number n)) (latest #f))
               (if (zero? left)
                   (outcome-of id latest)
                   (let ((batch (iota (min 100 left))))
                     (on (all-of* (map (lambda (_)
                                         (apply <- target (string->symbol method) argv))
                                       batch))
                         (lambda (answers) (lp (- left (length batch)) (last answers)))
                         #:catch (lambda (e) (say id "fail" (format #f "~s" e))))))))
           #:catch (lambda (e) (say id "fail" (format #f "~s" e)))))]
    ;; bench ID N URI: N `echo` calls to URI one after another, once it is enlivened;
    ;; answers the nanoseconds they took, measured here.
    [("bench" id n uri)
     (on (enliven uri)
         (lambda (target)
           (let ((start (get-internal-real-time)))
             (let lp ((left (string->number n)))
               (if (zero? left)
                   (let ((ticks (- (get-internal-real-time) start)))
                     (say id "ok" (value->hex (quotient (* ticks 1000000000)
                                                        internal-time-units-per-second))))
                   (on (<- target 'echo 'ping)
                       (lambda (_) (lp (- left 1)))
                       #:catch (lambda (e) (say id "fail" (format #f "~s" e))))))))
         #:catch (lambda (e) (say id "fail" (format #f "~s" e))))]
    ;; pipeline ID URI METHOD ARGS METHOD2 ARGS2: calls METHOD2 on the promised answer.
    [("pipeline" id uri method args method2 args2)
     (let ((first (apply <- (enliven uri) (string->symbol method) (decode-args args))))
       (outcome-of id (apply <- first (string->symbol method2) (decode-args args2))))]
    ;; callback ID URI METHOD: passes a Goblins echo to the gobs method, which calls it.
    [("callback" id uri method)
     (outcome-of id (<- (enliven uri) (string->symbol method) (spawn ^echo)))]
    ;; relay ID URI METHOD: passes an unresolved Goblins promise to the gobs method, which
    ;; answers with it; the promise is kept until "settle ID VALUE".
    [("relay" id uri method)
     (let-values (((p r) (spawn-promise-and-resolver)))
       (hash-set! pending id r)
       (outcome-of id (<- (enliven uri) (string->symbol method) p))
       (say id "relayed"))]
    ;; settle ID RELAY-ID VALUE: fulfils the promise "relay RELAY-ID" handed out.
    [("settle" id relay-id value)
     ($ (hash-ref pending relay-id) 'fulfill (hex->value value))
     (hash-remove! pending relay-id)
     (say id "ok" (value->hex #t))]
    ;; give ID RECIPIENT-URI TARGET-URI: hands the target to the recipient (`receive`):
    ;; Goblins is the gifter of a three-party handoff; answers the recipient's answer.
    [("give" id recipient-uri target-uri)
     (outcome-of id (<- (enliven recipient-uri) 'receive (enliven target-uri)))]
    ;; gc ID: a full collection; Goblins' guardian tells the peer what died within 1 s.
    [("gc" id)
     (gc)
     (say id "ok" (value->hex #t))]
    [_ (say "?" "fail" (format #f "unknown command ~s" line))]))

(with-vat vat
  (on (<- netlayer 'our-location)
      (lambda (loc)
        (let ((port (hashmap-ref (ocapn-peer-hints loc) "port")))
          (spit (state-file "port") (string->utf8 port)))
        (for-each
         (match-lambda
           ((name . obj)
            (let ((swiss (assq-ref swiss-of name)))
              ($ ($ mycapn 'get-registry) 'register obj swiss)
              (say "ready" name (ocapn-id->string (make-ocapn-sturdyref loc swiss))))))
         objects)
        (say "ready"))))

(let lp ()
  (let ((line (read-line)))
    (unless (eof-object? line)
      (with-vat vat (run-command line))
      (lp))))
