package RegistryTest;

# A small harness for the module's tests: nginx (Debian's binary with the
# freshly built module), CNCF distribution registries and helper servers,
# each on a free loopback port, started and stopped by pid, with bounded
# waits on readiness.  Raw HTTP requests go out byte for byte.

use strict;
use warnings;

use Cwd qw(abs_path);
use Exporter qw(import);
use File::Basename qw(dirname);
use File::Path qw(make_path);
use File::Temp qw(tempdir);
use IO::Select;
use IO::Socket::INET;
use Digest::SHA;
use JSON::PP;
use POSIX qw(:sys_wait_h);
use Time::HiRes qw(time sleep);
use Compress::Zlib qw(crc32);

our @EXPORT = qw(
    $ROOT $NGINX nginx_version module_path test_dir free_port wait_port spawn stop
    start_registry start_nginx nginx_conf registry_requests file_lines
    http_raw http_get build_image push_image run_ok run_out slurp spew
    upstream_digest build_index_image cache_entries wait_until
    $SYSTEM_CA make_ca make_cert push_blob median eventually at_least
    build_unit token_auth start_dns $MIRROR_PARAMS mismatches_at
    cached_digest mutate skopeo_pull start_silent start_containerd
    hash_ring ring_owner flip_bit machine_line
    start_prometheus prom_query wait_prom_value parse_metrics
    start_hostile hostile_mode hostile_asked
);

our $ROOT = abs_path(dirname(__FILE__) . '/../..');

# Debian's binary; NGINX= and REGISTRY_MODULE= run the suite on another
# build (nginx 1.26, an AddressSanitizer one: see README.md).  nginx itself
# reads NGINX from its environment (sockets inherited on a binary upgrade)
# and logs an [emerg] for a path there: it is not passed on.
our $NGINX = delete $ENV{NGINX} // 'nginx';
our $SYSTEM_CA = '/etc/ssl/certs/ca-certificates.crt';

my @procs;
my $dir;
my $seq = 0;

# The version of the nginx under test as a number, 1022001 for 1.22.1, as
# nginx_version in nginx.h: for the few checks where nginx itself answers
# differently from one version to the next.
my $version;
sub nginx_version {
    return $version if $version;
    my @v = run_out($NGINX, '-v') =~ m{nginx/(\d+)\.(\d+)\.(\d+)}
        or die "$NGINX -v: no version";
    return $version = $v[0] * 1000000 + $v[1] * 1000 + $v[2];
}

sub module_path {
    return $ENV{REGISTRY_MODULE}
        // "$ROOT/build/nginx/objs/ngx_http_registry_module.so";
}

# One scratch folder per test file, readable by nginx's workers.
sub test_dir {
    return $dir if $dir;
    $dir = tempdir('registry-t-XXXXXX', TMPDIR => 1,
                   CLEANUP => !$ENV{KEEP_TEST_DIR});
    chmod 0755, $dir;
    return $dir;
}

sub slurp {
    my ($f) = @_;
    open my $fh, '<:raw', $f or return '';
    local $/;
    return scalar <$fh>;
}

sub spew {
    my ($f, $data) = @_;
    open my $fh, '>:raw', $f or die "$f: $!";
    print $fh $data;
    close $fh;
}

sub file_lines {
    my ($f) = @_;
    return grep { length } split /\n/, slurp($f);
}

# A port for a server of the test to listen on, never one handed out
# before in this process (a port kept closed on purpose, or not bound
# yet, would otherwise come back: the kernel's port 0 is random), and
# below the kernel's ephemeral range (32768 up), where nginx's and the
# clients' outgoing connections take their local ports: one of those
# could hold the port by the time the server binds it.  Random from
# /dev/urandom, not rand(): fuzz tests seed rand with a constant.
my %given;

sub free_port {
    open my $rnd, '<:raw', '/dev/urandom' or die "/dev/urandom: $!";
    for (1 .. 1000) {
        read($rnd, my $b, 2) == 2 or die "/dev/urandom: $!";
        my $port = 20000 + unpack('n', $b) % 12000;
        next if $given{$port};
        my $s = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                      LocalPort => $port, Proto => 'tcp',
                                      Listen => 1)
            or next;
        close $s;
        $given{$port} = 1;
        return $port;
    }
    die 'no free port in 20000-31999';
}

# Polls until a TCP connect succeeds; bounded, and gives up at once when
# the process that should listen has died.
sub wait_port {
    my ($port, %o) = @_;
    my $host = $o{host} // '127.0.0.1';
    my $deadline = time + ($o{timeout} // 30);
    while (time < $deadline) {
        if (defined $o{pid} && waitpid($o{pid}, WNOHANG) == $o{pid}) {
            return 0;
        }
        my $s = IO::Socket::INET->new(PeerAddr => $host, PeerPort => $port,
                                      Proto => 'tcp', Timeout => 1);
        if ($s) {
            close $s;
            return 1;
        }
        sleep 0.05;
    }
    return 0;
}

sub spawn {
    my (%o) = @_;
    my $pid = fork // die "fork: $!";
    if ($pid == 0) {
        open STDIN, '<', '/dev/null';
        open STDOUT, '>>', $o{stdout} // '/dev/null' or die;
        open STDERR, '>>', $o{stderr} // $o{stdout} // '/dev/null' or die;
        exec @{ $o{cmd} } or die "exec $o{cmd}[0]: $!";
    }
    push @procs, $pid;
    return $pid;
}

# TERM, a bounded wait for the pid to go (reaped if it is our child),
# then KILL.
sub stop {
    my ($pid) = @_;
    return unless $pid && kill 0, $pid;
    kill 'TERM', $pid;
    my $deadline = time + 10;
    while (time < $deadline) {
        return if waitpid($pid, WNOHANG) == $pid || !kill 0, $pid;
        sleep 0.05;
    }
    kill 'KILL', $pid;
    waitpid($pid, WNOHANG);
}

END {
    my $status = $?;
    stop($_) for reverse @procs;
    $? = $status;
}

sub run_out {
    my (@cmd) = @_;
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>&', \*STDOUT;
        exec @cmd or die "exec $cmd[0]: $!";
    }
    local $/;
    my $out = <$fh> // '';
    close $fh;
    return $out;
}

sub run_ok {
    my (@cmd) = @_;
    my $out = run_out(@cmd);
    die "failed: @cmd\n$out" if $?;
    return $out;
}

# A CNCF distribution registry on a free port; its stdout carries the
# access log, one line per request it served.
sub start_registry {
    my (%o) = @_;
    my $d = test_dir() . '/registry-' . ++$seq;
    make_path("$d/data");
    my $port = free_port();
    my $extra = $o{config} // '';
    my $tls = $o{tls} ? "  tls:\n    certificate: $o{tls}[0]\n"
                        . "    key: $o{tls}[1]\n" : '';
    spew("$d/config.yml", <<"YAML");
version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $d/data
  delete:
    enabled: true
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  secret: registry-test-secret
$tls$extra
YAML
    my $pid = spawn(cmd => ['docker-registry', 'serve', "$d/config.yml"],
                    stdout => "$d/log");
    wait_port($port, pid => $pid)
        or die "registry did not start:\n" . slurp("$d/log");
    my $scheme = $o{tls} ? 'https' : 'http';
    return { port => $port, pid => $pid, dir => $d, log => "$d/log",
             host => "127.0.0.1:$port", url => "$scheme://127.0.0.1:$port" };
}

# A test CA (openssl): returns its certificate and key files.
sub make_ca {
    my $d = test_dir() . '/ca-' . ++$seq;
    make_path($d);
    run_ok('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
           '-keyout', "$d/ca.key", '-out', "$d/ca.crt", '-days', '2',
           '-subj', '/CN=registry test CA');
    return { crt => "$d/ca.crt", key => "$d/ca.key" };
}

# A server certificate for DNS name $name, signed by $ca (or self-signed
# when $ca is undef); more subjectAltName entries ("IP:127.0.0.1",
# "DNS:...") may follow.  Returns [certificate, key].
sub make_cert {
    my ($ca, $name, @alt) = @_;
    my $d = test_dir() . '/cert-' . ++$seq;
    make_path($d);
    my $san = join ',', "DNS:$name", @alt;
    spew("$d/ext", "subjectAltName=$san\n");
    if (!$ca) {
        run_ok('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
               '-keyout', "$d/key", '-out', "$d/crt", '-days', '2',
               '-subj', "/CN=$name", '-addext', "subjectAltName=$san");
        return ["$d/crt", "$d/key"];
    }
    run_ok('openssl', 'req', '-newkey', 'rsa:2048', '-nodes',
           '-keyout', "$d/key", '-out', "$d/csr", '-subj', "/CN=$name");
    run_ok('openssl', 'x509', '-req', '-in', "$d/csr", '-CA', $ca->{crt},
           '-CAkey', $ca->{key}, '-CAcreateserial', '-out', "$d/crt",
           '-days', '2', '-extfile', "$d/ext");
    return ["$d/crt", "$d/key"];
}

# Polls a condition, bounded (5 s unless told): for what another server
# logs after it has answered, which can land after our client is done.
sub eventually {
    my ($cond, $timeout) = @_;
    my $deadline = time + ($timeout // 5);
    for (;;) {
        my $v = $cond->();
        return $v if $v || time >= $deadline;
        sleep 0.02;
    }
}

# A count that other servers' logs make, once it has reached $n (or what
# it is after the bounded wait): the caller still asserts the exact value.
sub at_least {
    my ($n, $count) = @_;
    my $got = 0;
    eventually(sub { ($got = $count->()) >= $n });
    return $got;
}

# The request lines ("GET /v2/... ") of a registry's access log.
sub registry_requests {
    my ($reg) = @_;
    return map { /"([A-Z]+ \S+) HTTP\/[\d.]+"/ ? $1 : () }
           file_lines($reg->{log});
}

# Wraps the inside of an http{} block into a whole nginx.conf for a test:
# 2 workers (or "workers"), logs, temp files and the cache (zone
# "registry") in the test folder.
sub nginx_conf {
    my ($http, %o) = @_;
    my $workers = $o{workers} // 2;
    my $user = $> == 0 ? 'user www-data;' : '';
    my $load = $o{plain} ? '' : 'load_module ' . module_path() . ';';
    return <<"CONF";
$load
$user
worker_processes $workers;
pid \@DIR\@/nginx.pid;
error_log \@DIR\@/error.log info;
events { worker_connections 1024; }
http {
    access_log \@DIR\@/access.log;
    client_body_temp_path \@DIR\@/tmp/body;
    proxy_temp_path \@DIR\@/tmp/proxy;
    fastcgi_temp_path \@DIR\@/tmp/fastcgi;
    uwsgi_temp_path \@DIR\@/tmp/uwsgi;
    scgi_temp_path \@DIR\@/tmp/scgi;
    proxy_cache_path \@DIR\@/cache levels=1:2 keys_zone=registry:8m
                     use_temp_path=off;
$http
}
CONF
}

# Starts nginx in the foreground with "conf" (a whole nginx.conf) or
# "http" (the inside of http{}; plain => 1 leaves the module out); @DIR@
# names its folder ("dir": an earlier instance's, to start it again with
# its cache and files).  "ca" is the registry-ca.crt beside it (default: the
# system bundle).  Waits for every
# port (or "addr:port") in "ports".
sub start_nginx {
    my (%o) = @_;
    my $d = $o{dir} // test_dir() . '/nginx-' . ++$seq;
    make_path("$d/tmp");
    chmod 0755, $d;
    my $conf = $o{conf} // nginx_conf($o{http}, plain => $o{plain},
                                      workers => $o{workers});
    $conf =~ s/\@DIR\@/$d/g;
    spew("$d/nginx.conf", $conf);
    # registry_params verifies upstream certificates against this file
    spew("$d/registry-ca.crt", $o{ca} // slurp($SYSTEM_CA));
    my $pid = spawn(cmd => [$NGINX, '-p', "$d/", '-c', "$d/nginx.conf",
                            '-e', "$d/stderr.log", '-g', 'daemon off;'],
                    stdout => "$d/stdout.log");
    for my $p (@{ $o{ports} }) {
        my ($host, $port) = $p =~ /:/ ? split(/:/, $p) : ('127.0.0.1', $p);
        wait_port($port, host => $host, pid => $pid)
            or die "nginx did not start:\n" . slurp("$d/stderr.log")
                   . slurp("$d/error.log");
    }
    return { pid => $pid, dir => $d, access_log => "$d/access.log",
             error_log => "$d/error.log" };
}

# Sends the exact bytes of a request and reads the whole answer.
sub http_raw {
    my ($port, $bytes, %o) = @_;
    # "local": the client's own address (another loopback one, say)
    my $s = IO::Socket::INET->new(PeerAddr => $o{host} // '127.0.0.1',
                                  PeerPort => $port, Proto => 'tcp',
                                  Timeout => 5,
                                  $o{local} ? (LocalAddr => $o{local}) : ())
        or die "connect $port: $!";
    binmode $s;
    print $s $bytes;
    my $sel = IO::Select->new($s);
    my $buf = '';
    my $deadline = time + ($o{timeout} // 30);
    while (time < $deadline && $sel->can_read($deadline - time)) {
        my $n = sysread($s, $buf, 65536, length $buf);
        last unless $n;
    }
    close $s;
    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    $head //= '';
    my ($status) = $head =~ m{^HTTP/1\.[01] (\d{3})};
    my %h;
    for (split /\r\n/, $head) {
        next unless /^([^:]+):\s*(.*)$/;
        push @{ $h{lc $1} }, $2;
    }
    $body //= '';
    my $complete = 1;
    if (grep { /chunked/i } @{ $h{'transfer-encoding'} // [] }) {
        ($body, $complete) = dechunk($body);
    }
    my $json = eval { decode_json($body) };
    return { status => $status // 0, headers => \%h, body => $body,
             json => $json, raw => $buf, complete => $complete };
}

# The data of a chunked body, and whether its last chunk arrived.
sub dechunk {
    my ($in) = @_;
    my $out = '';
    while ($in =~ s/^([0-9a-fA-F]+)[^\r\n]*\r\n//) {
        my $n = hex $1;
        return ($out, 1) if $n == 0;
        return ($out . $in, 0) if length $in < $n;
        $out .= substr($in, 0, $n, '');
        $in =~ s/^\r\n//;
    }
    return ($out . $in, 0);
}

# A request built from parts; the path is sent exactly as given.
sub http_get {
    my ($port, $path, %o) = @_;
    my $method = $o{method} // 'GET';
    my $host = $o{host_header} // ($o{host} // '127.0.0.1') . ":$port";
    my $req = "$method $path HTTP/1.1\r\nHost: $host\r\n"
              . "Connection: close\r\n";
    $req .= "$_\r\n" for @{ $o{headers} // [] };
    $req .= "\r\n";
    return http_raw($port, $req, %o);
}

# Builds an OCI image layout with umoci: one layer per entry of "layers",
# each a hash of file name => content.
sub build_image {
    my (%o) = @_;
    my $d = test_dir() . '/image-' . ++$seq;
    my $tag = $o{tag} // 'latest';
    run_ok('umoci', 'init', '--layout', "$d/oci");
    run_ok('umoci', 'new', '--image', "$d/oci:$tag");
    my $i = 0;
    for my $layer (@{ $o{layers} }) {
        my $src = "$d/layer-" . ++$i;
        make_path($src);
        spew("$src/$_", $layer->{$_}) for keys %$layer;
        run_ok('umoci', 'insert', '--image', "$d/oci:$tag", $src,
               "/layer-$i");
    }
    return { layout => "$d/oci", tag => $tag, ref => "oci:$d/oci:$tag" };
}

# Two single-layer images (amd64, arm64) in one layout and, tagged "multi",
# an OCI index over them written by hand; push with all => 1.
sub build_index_image {
    my $img = build_image(layers => [{ arch => "amd64\n" }], tag => 'amd64');
    my $d = $img->{layout};
    my $src = test_dir() . '/arm64-' . ++$seq;
    make_path($src);
    spew("$src/arch", "arm64\n");
    run_ok('umoci', 'new', '--image', "$d:arm64");
    run_ok('umoci', 'insert', '--image', "$d:arm64", $src, '/arch');

    my $index = decode_json(slurp("$d/index.json"));
    my @m = map { {
        mediaType => $_->{mediaType}, digest => $_->{digest},
        size => $_->{size},
        platform => { os => 'linux', architecture =>
                      $_->{annotations}{'org.opencontainers.image.ref.name'} },
    } } @{ $index->{manifests} };
    my $json = JSON::PP->new->canonical->encode({
        schemaVersion => 2,
        mediaType => 'application/vnd.oci.image.index.v1+json',
        manifests => \@m });
    my $hex = Digest::SHA::sha256_hex($json);
    spew("$d/blobs/sha256/$hex", $json);
    push @{ $index->{manifests} }, {
        mediaType => 'application/vnd.oci.image.index.v1+json',
        digest => "sha256:$hex", size => length $json,
        annotations => { 'org.opencontainers.image.ref.name' => 'multi' } };
    spew("$d/index.json", encode_json($index));
    return { layout => $d, tag => 'multi', ref => "oci:$d:multi" };
}

# The entries of a proxy_cache folder: cache key => [file, contents].
sub cache_entries {
    my ($cache) = @_;
    my %e;
    for my $f (split /\n/, run_out('find', $cache, '-type', 'f')) {
        my $data = slurp($f);
        $e{$1} = [$f, $data] if $data =~ /\nKEY: ([^\n]*)\n/;
    }
    return \%e;
}

# For cache validity, the condition is the clock itself: wait until the
# wall clock has passed an epoch time (bounded by the caller's choice).
sub wait_until {
    my ($epoch) = @_;
    my $left = $epoch - time;
    sleep $left if $left > 0;
}

sub push_image {
    my ($image, $reg, $name, %o) = @_;
    my @all = $o{all} ? ('--all') : ();
    push @all, '--dest-creds', $o{creds} if $o{creds};
    run_ok('skopeo', '--insecure-policy', 'copy', @all,
           '--dest-tls-verify=false', $image->{ref},
           "docker://$reg->{host}/$name");
}

# A file pushed as a blob of bench/app through the registry API (one
# monolithic upload); returns its digest.
sub push_blob {
    my ($reg, $file) = @_;
    my $sha = Digest::SHA->new(256);
    $sha->addfile($file);
    my $digest = 'sha256:' . $sha->hexdigest;
    my $head = run_ok('curl', '-si', '-X', 'POST',
                      "$reg->{url}/v2/bench/app/blobs/uploads/");
    my ($loc) = $head =~ /^Location:\s*(\S+)/mi or die "no upload: $head";
    $loc = "$reg->{url}$loc" if $loc =~ m{^/};
    run_ok('curl', '-sf', '-T', $file, "$loc&digest=$digest");
    return $digest;
}

# Builds t/unit/<name>.c with the module's pure files it names (no nginx
# request in sight), with AddressSanitizer and UBSan where the compiler has
# them.  Returns the program's path and whether it is sanitized; dies with
# the compiler's words when it does not build.
sub build_unit {
    my ($name, @files) = @_;
    my $src = "$ROOT/ngx_registry_module";
    my $ngx = "$ROOT/build/nginx";
    my $bin = test_dir() . "/$name";
    my @inc = map { "-I$ngx/$_" }
              qw(src/core src/event src/event/modules src/os/unix objs);
    my @cc = ('cc', '-g', '-O1', '-Wall', '-Werror', @inc, "-I$src",
              "$ROOT/t/unit/$name.c", (map { "$src/$_" } @files),
              '-o', $bin);
    my $out = run_out(@cc[0 .. 4], '-fsanitize=address,undefined',
                      '-fno-sanitize-recover=all', @cc[5 .. $#cc]);
    return ($bin, 1) unless $?;
    $out = run_out(@cc);
    die "$name does not build:\n$out" if $?;
    return ($bin, 0);
}

# A DNS server for names the tests make up (nginx's resolver ignores
# /etc/hosts): dnsmasq on a free loopback port answering each name with
# its address.  Returns the port, once it listens.
sub start_dns {
    my (%names) = @_;
    my $port = free_port();
    my $pid = spawn(cmd => ['dnsmasq', '--keep-in-foreground',
                            "--port=$port", '--listen-address=127.0.0.1',
                            '--bind-interfaces', '--no-resolv', '--no-hosts',
                            '--conf-file=/dev/null', '--pid-file=',
                            map { "--address=/$_/$names{$_}" } sort keys %names],
                    stdout => test_dir() . '/dns-' . ++$seq . '.log');
    wait_port($port, pid => $pid) or die "dnsmasq did not start";
    return $port;
}

# For a test's mirror server{}: registry_params, and a location that
# reports the shared digest-mismatch counter (GET /_test/mismatches).
our $MIRROR_PARAMS = <<"EOF";
        include $ROOT/registry_params;

        location = /_test/mismatches {
            registry_mirror off;
            return 200 "\$registry_digest_mismatches";
        }
EOF

sub mismatches_at {
    my ($port) = @_;
    return http_get($port, '/_test/mismatches')->{body};
}

# Whether a cache key of nginx $ng names $digest.
sub cached_digest {
    my ($ng, $digest) = @_;
    return scalar grep { /\Q$digest\E/ }
                  keys %{ cache_entries("$ng->{dir}/cache") };
}

# A document with $n (1 to 4) random edits from @alphabet: a character
# replaced, deleted or inserted, or the rest cut off.  The caller seeds
# rand, so a run can be repeated.
sub mutate {
    my ($d, $n, @alphabet) = @_;
    for (1 .. 1 + $n % 4) {
        my $at = int rand length $d;
        my $r = rand;
        if ($r < 0.4) {
            substr($d, $at, 1) = $alphabet[rand @alphabet];
        } elsif ($r < 0.6) {
            substr($d, $at, 1) = '';
        } elsif ($r < 0.8) {
            substr($d, $at, 0) = $alphabet[rand @alphabet];
        } else {
            $d = substr($d, 0, $at);
        }
    }
    return $d;
}

# The auth section of a distribution config: bearer tokens from the token
# server on $port, signed with the certificate $dir/signer.crt.
sub token_auth {
    my ($port, $dir) = @_;
    return <<"EOF";
auth:
  token:
    realm: http://127.0.0.1:$port/token
    service: test-registry
    issuer: test-issuer
    rootcertbundle: $dir/signer.crt
EOF
}

sub median {
    my @v = sort { $a <=> $b } @_;
    return $v[int($#v / 2)];
}

# skopeo copy of docker://127.0.0.1:<port>/<ref> into a new folder:
# (whether it worked, skopeo's output, the folder).
sub skopeo_pull {
    my ($port, $ref, @opts) = @_;
    my $out = test_dir() . '/pull-' . int(rand 1e9);
    my $log = run_out('skopeo', '--insecure-policy', 'copy',
                      '--src-tls-verify=false', @opts,
                      "docker://127.0.0.1:$port/$ref", "dir:$out");
    return ($? == 0, $log, $out);
}

# An upstream that accepts connections on $port and never answers (for
# at most a minute); returns its pid once it listens.
sub start_silent {
    my ($port) = @_;
    my $pid = spawn(cmd => ['perl', '-MIO::Socket::INET', '-e', <<"EOF"]);
alarm 60;
my \$s = IO::Socket::INET->new(LocalAddr => '127.0.0.1', LocalPort => $port,
                               Listen => 16, ReuseAddr => 1) or die;
my \@held;
while (my \$c = \$s->accept) { push \@held, \$c }
EOF
    wait_port($port, pid => $pid) or die 'the silent upstream did not start';
    return $pid;
}

# The manifest digest a registry reports for name:ref, asked directly.
sub upstream_digest {
    my ($reg, $name, $ref, @accept) = @_;
    @accept = ('application/vnd.oci.image.manifest.v1+json',
               'application/vnd.docker.distribution.manifest.v2+json')
        unless @accept;
    my $r = http_get($reg->{port}, "/v2/$name/manifests/$ref",
                     method => 'HEAD',
                     headers => [map { "Accept: $_" } @accept]);
    return $r->{headers}{'docker-content-digest'}[0];
}

# containerd with everything in folder $d (root, state, sockets), the
# native snapshotter, nothing of the machine's.  Returns its pid and
# socket once ctr can talk to it, or () (the log is $d/containerd.log).
sub start_containerd {
    my ($d) = @_;
    my $sock = "$d/containerd.sock";
    spew("$d/containerd.toml", <<"EOF");
version = 2
root = "$d/containerd-root"
state = "$d/containerd-state"
disabled_plugins = ["io.containerd.grpc.v1.cri",
                    "io.containerd.internal.v1.opt",
                    "io.containerd.snapshotter.v1.btrfs",
                    "io.containerd.snapshotter.v1.zfs",
                    "io.containerd.snapshotter.v1.devmapper",
                    "io.containerd.snapshotter.v1.aufs",
                    "io.containerd.snapshotter.v1.overlayfs"]
[grpc]
  address = "$sock"
[ttrpc]
  address = "$sock.ttrpc"
[debug]
  address = "$d/containerd-debug.sock"
[metrics]
  address = ""
EOF
    my $pid = spawn(cmd => ['containerd', '--config', "$d/containerd.toml"],
                    stdout => "$d/containerd.log");
    my $up = eventually(sub {
        return 0 unless -S $sock;
        run_out('ctr', '-a', $sock, 'version');
        return !$?;
    }, 30);
    return ($pid, $sock) if $up;
    stop($pid);
    return ();
}

# The consistent hash ring of an upstream block ("hash ... consistent"),
# as nginx builds it: for each server "host:port", 160 points
# crc32(host \0 port prev_hash), prev_hash the point before (4 bytes,
# little endian).  ring_owner: the server a key goes to, the first point
# at or after crc32(key), wrapping round.
sub hash_ring {
    my (@servers) = @_;
    my %p;
    for my $s (@servers) {
        my ($host, $port) = $s =~ /^(.*):(\d+)$/;
        my $base = crc32("$host\0$port");
        my $prev = 0;
        for (1 .. 160) {
            my $h = crc32(pack('V', $prev), $base);
            $p{$h} //= $s;
            $prev = $h;
        }
    }
    return [map { [$_, $p{$_}] } sort { $a <=> $b } keys %p];
}

sub ring_owner {
    my ($ring, $key) = @_;
    my $h = crc32($key);
    for my $pt (@$ring) {
        return $pt->[1] if $pt->[0] >= $h;
    }
    return $ring->[0][1];
}

# Flips the lowest bit of the byte at offset $at of $file.
sub flip_bit {
    my ($file, $at) = @_;
    open my $fh, '+<:raw', $file or die "$file: $!";
    seek $fh, $at, 0;
    read $fh, my $c, 1;
    seek $fh, $at, 0;
    print $fh chr(ord($c) ^ 0x01);
    close $fh;
}

# For a bench report: "machine: <cpu>, <n> cores, nginx <version>".
sub machine_line {
    my ($nginx) = @_;
    my $cpuinfo = slurp('/proc/cpuinfo');
    my $cpu = (grep { /model name/ } split /\n/, $cpuinfo)[0] // '';
    $cpu =~ s/.*:\s*//;
    return sprintf "machine: %s, %d cores, nginx %s\n", $cpu,
                   scalar(grep { /^processor/ } split /\n/, $cpuinfo),
                   (run_out($nginx // $NGINX, '-v') =~ m{nginx/(\S+)})[0];
}

# A Prometheus (Debian's prometheus) scraping "targets" (host:port) at
# "metrics_path" every "interval" (default 1 s), rules and alerts
# evaluated as often from the files in "rules"; its config, data and log
# in a folder of its own, its web API on a free loopback port.  Returns
# {port, pid, dir} once /-/ready answers 200.
sub start_prometheus {
    my (%o) = @_;
    my $d = test_dir() . '/prometheus-' . ++$seq;
    make_path("$d/data");
    my $port = free_port();
    my $interval = $o{interval} // '1s';
    my $targets = join ', ', map { "'$_'" } @{ $o{targets} // [] };
    my $rules = join '', map { "  - $_\n" } @{ $o{rules} // [] };
    spew("$d/prometheus.yml", <<"YAML");
global:
  scrape_interval: $interval
  scrape_timeout: $interval
  evaluation_interval: $interval
@{[ $rules ? "rule_files:\n$rules" : '' ]}scrape_configs:
  - job_name: registry
    metrics_path: @{[ $o{metrics_path} // '/metrics' ]}
    static_configs:
      - targets: [$targets]
YAML
    my $pid = spawn(cmd => ['prometheus', "--config.file=$d/prometheus.yml",
                            "--storage.tsdb.path=$d/data",
                            "--web.listen-address=127.0.0.1:$port",
                            '--storage.tsdb.retention.time=1h',
                            '--query.lookback-delta=30s',
                            '--log.level=warn'],
                    stdout => "$d/log");
    my $prom = { port => $port, pid => $pid, dir => $d, log => "$d/log" };
    wait_port($port, pid => $pid)
        && eventually(sub { http_get($port, '/-/ready')->{status} == 200 },
                      30)
        or die "prometheus did not start:\n" . slurp("$d/log");
    return $prom;
}

# The result of an instant query (/api/v1/query): an array of
# { metric => {labels}, value => number }, empty when nothing matches;
# dies when Prometheus answers an error.
sub prom_query {
    my ($prom, $promql) = @_;
    (my $q = $promql) =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
    my $r = http_get($prom->{port}, "/api/v1/query?query=$q");
    my $j = $r->{json};
    die "prometheus query $promql: $r->{status} $r->{body}"
        unless $j && $j->{status} eq 'success';
    my $data = $j->{data};
    return [{ metric => {}, value => 0 + $data->{result}[1] }]
        if $data->{resultType} eq 'scalar';
    return [map { { metric => $_->{metric}, value => 0 + $_->{value}[1] } }
            @{ $data->{result} }];
}

# Polls an instant query until it answers one sample of value $want
# (bounded: 30 s unless told); returns the last value seen (undef when the
# query matched nothing), for the caller to assert.
sub wait_prom_value {
    my ($prom, $promql, $want, $timeout) = @_;
    my $got;
    eventually(sub {
        my $r = prom_query($prom, $promql);
        $got = @$r == 1 ? $r->[0]{value} : undef;
        return defined $got && $got == $want;
    }, $timeout // 30);
    return $got;
}

# The Prometheus text format as { 'name{label="v",...}' => value }, the
# labels sorted by name, and "# TYPE" lines as { name => type } in the
# second hash; dies on a line it does not understand.
sub parse_metrics {
    my ($text) = @_;
    my (%v, %type);
    for my $line (split /\n/, $text) {
        next if $line =~ /^\s*$/;
        if ($line =~ /^# TYPE (\S+) (\S+)$/) {
            $type{$1} = $2;
            next;
        }
        next if $line =~ /^#/;
        my ($name, $labels, $value) =
            $line =~ /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)(?: \d+)?$/
            or die "metrics line: $line";
        my @l;
        while (length($labels // '')) {
            $labels =~ s/^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)",?//
                or die "metrics labels: $line";
            push @l, [$1, $2];
        }
        my $key = $name . (@l ? '{' . join(',', map { qq{$_->[0]="$_->[1]"} }
                                          sort { $a->[0] cmp $b->[0] } @l)
                                    . '}' : '');
        die "metrics: $key twice" if exists $v{$key};
        $v{$key} = $value eq '+Inf' ? 9**9**9 : 0 + $value;
    }
    return wantarray ? (\%v, \%type) : \%v;
}

# A test-only hostile upstream (t/lib/hostile.pl) on a free port: its
# folder holds blobs/, manifests/, a <mode>.json file a mode (hostile_mode)
# and requests.log, one line a request (hostile_asked counts the lines a
# pattern matches).  "up" says whether it listens.
sub start_hostile {
    my ($name) = @_;
    my $d = test_dir() . "/hostile-$name";
    make_path("$d/blobs", "$d/manifests");
    my $port = free_port();
    my $pid = spawn(cmd => ['perl', "$ROOT/t/lib/hostile.pl", $port, $d]);
    return { dir => $d, port => $port, pid => $pid,
             url => "http://127.0.0.1:$port",
             up => wait_port($port, pid => $pid) };
}

sub hostile_mode {
    my ($h, $mode, $spec) = @_;
    spew("$h->{dir}/$mode.json", encode_json($spec));
}

sub hostile_asked {
    my ($h, $re) = @_;
    return scalar grep { /$re/ } file_lines("$h->{dir}/requests.log");
}

1;
