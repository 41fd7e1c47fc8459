#!/usr/bin/perl

# Real clients pull a private image through the edge mirror with their own
# logins (issue 11): the mirror over TLS, its default route a registry
# declared auth=client, a TLS distribution registry with token auth behind
# it.  For each of skopeo, podman and containerd: bob (who may pull only
# public/*) cannot pull team-a/app, alice can, and once the first client's
# pull has filled the cache no later pull sends a blob GET upstream.  Each
# client runs with its own folders (HOME, XDG dirs, authfile, certificate
# folder, registries.conf, policy, storage): the machine's own container
# configuration is never read or written.
#
# What each client sends (seen in the mirror's access log; skopeo 1.9.3,
# podman 4.3.1 = containers/image 5.23.1, containerd 1.6.20):
#
# skopeo login / podman login:
#   GET /v2/ (no Authorization) -> 401 + challenge;
#   GET <realm>?account=alice&service=<service> with Basic: no scope, no
#   client_id, no offline_token;
#   GET /v2/ with the Bearer it got: the login succeeds only on 200.
# skopeo copy / podman pull (credentials from the authfile):
#   GET /v2/ -> 401; GET <realm>?account=alice&scope=repository%3Ateam-a
#   %2Fapp%3Apull&service=<service> with Basic; GET of the manifest BY TAG
#   with the Bearer (no HEAD first); then the config and layers by GET in
#   parallel, each blob goroutine fetching its own token again (2 to 4
#   identical token GETs per pull).
# containerd (ctr images pull --user alice:alice-pw):
#   no /v2/ ping: HEAD /v2/team-a/app/manifests/1 (no Authorization) -> 401;
#   then, every time it needs a token, the OAuth2 POST first:
#   Content-Type: application/x-www-form-urlencoded; charset=utf-8, body
#   client_id=containerd-client&grant_type=password&password=alice-pw
#   &scope=repository%3Ateam-a%2Fapp%3Apull&service=<service>&username=alice
#   (no access_type=offline: no refresh token asked for); on 400, 401, 404
#   (and 405) it falls back to GET <realm>?scope=...&service=... with Basic
#   (no account=).  Then HEAD of the tag with the Bearer; a GET of the
#   manifest by digest WITHOUT Authorization (-> 401, a second token
#   round-trip); the manifest and blobs by GET with the Bearer.
#   ctr treats 127.0.0.1 as plain http: the mirror's https and CA are given
#   in a hosts.toml (--hosts-dir); --tlscacert alone speaks http.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path);
use JSON::PP;
use RegistryTest;

my %have = map { my $t = $_; ($t => scalar grep { -x "$_/$t" }
                                    split /:/, $ENV{PATH}) }
           qw(skopeo podman containerd ctr);

# t/lib/Edge.pm (branch edge-tests) is the shared fixture; edge() below
# stands in for it until it lands, with the same keys
my $e = -e "$ROOT/t/lib/Edge.pm" ? do { require Edge; Edge::start() }
                                 : edge();
my $d = test_dir();
my $m = "127.0.0.1:$e->{mport}";
my $reg = $e->{reg};
my $app = $e->{images}{team_a};

# what the registry has served, by the digests of team-a/app's blobs
sub blob_gets {
    my @digests = @{ $app->{blobs} };
    my %n = map { $_ => 0 } @digests;
    for (registry_requests($reg)) {
        $n{$1}++ if m{^GET /v2/[^ ]*/blobs/(sha256:[0-9a-f]{64})$}
                    && exists $n{$1};
    }
    return \%n;
}

# the mirror's access log (nginx's combined format) as "METHOD URI STATUS
# USER": USER is the Basic user, "-" for a Bearer or no Authorization
sub mirror_log {
    return map { m{^\S+ - (\S+) \[[^\]]*\] "(\S+) (\S+)[^"]*" (\d+)}
                 ? "$2 $3 $4 $1" : () }
           file_lines($e->{mirror}{access_log});
}

# whether team-a/app's blobs have each gone upstream exactly once, after
# the registry has logged them
sub blobs_once {
    my ($what) = @_;
    my $n;
    eventually(sub {
        $n = blob_gets();
        return !grep { !$_ } values %$n;
    });
    my @wrong = grep { $n->{$_} != 1 } sort keys %$n;
    ok(!@wrong, "$what: each blob of team-a/app fetched upstream once")
        or diag(join "\n", map { "$_: $n->{$_} GETs" } sort keys %$n);
}

# each client's own folders and environment
sub client_env {
    my ($name) = @_;
    my $c = "$d/client-$name";
    make_path("$c/home/.config", "$c/run", "$c/certs");
    chmod 0700, "$c/run";
    system('cp', $e->{ca}{crt}, "$c/certs/ca.crt");
    spew("$c/registries.conf", "");
    spew("$c/containers.conf", "");
    spew("$c/storage.conf", "[storage]\ndriver = \"vfs\"\n"
                            . "runroot = \"$c/runroot\"\n"
                            . "graphroot = \"$c/root\"\n");
    spew("$c/policy.json", encode_json({ default =>
                                 [{ type => 'insecureAcceptAnything' }] }));
    return ($c, HOME => "$c/home", XDG_CONFIG_HOME => "$c/home/.config",
            XDG_RUNTIME_DIR => "$c/run", XDG_DATA_HOME => "$c/home/.local",
            CONTAINERS_REGISTRIES_CONF => "$c/registries.conf",
            CONTAINERS_CONF => "$c/containers.conf",
            CONTAINERS_STORAGE_CONF => "$c/storage.conf",
            REGISTRY_AUTH_FILE => "$c/auth.json");
}

sub run_env {
    my ($env, @cmd) = @_;
    local @ENV{keys %$env} = values %$env;
    my $out = run_out(@cmd);
    return ($? == 0, $out);
}

# --- skopeo --------------------------------------------------------------

SKIP: {
    skip 'skopeo is not installed (apt-get install skopeo)', 1
        unless $have{skopeo};
    my ($c, %env) = client_env('skopeo');
    my @sk = ('skopeo', '--policy', "$c/policy.json");
    my @tls = ('--cert-dir', "$c/certs");

    my ($ok, $out) = run_env(\%env, @sk, 'copy', '--src-cert-dir',
                             "$c/certs", "docker://$m/team-a/app:1",
                             "oci:$c/anonymous:1");
    ok(!$ok, 'skopeo: anonymous copy of team-a/app:1 refused');
    like($out, qr/unauthorized|authentication required|denied/i,
         '... as unauthorised') or diag $out;

    ($ok, $out) = run_env(\%env, @sk, 'login', @tls, '--authfile',
                          "$c/bob.json", '-u', 'bob', '-p', 'bob-pw', $m);
    ok($ok, 'skopeo login as bob') or diag $out;
    ($ok, $out) = run_env(\%env, @sk, 'copy', '--src-cert-dir', "$c/certs",
                          '--src-authfile', "$c/bob.json",
                          "docker://$m/team-a/app:1", "oci:$c/bob:1");
    ok(!$ok, 'skopeo: bob cannot copy team-a/app:1');
    like($out, qr/denied|unauthorized|authentication required/i,
         '... refused by the mirror') or diag $out;
    ok(slurp("$c/bob/index.json") !~ /"manifests"\s*:\s*\[\s*\{/,
       '... and nothing of it was written');
    ($ok, $out) = run_env(\%env, @sk, 'copy', '--src-cert-dir', "$c/certs",
                          '--src-authfile', "$c/bob.json",
                          "docker://$m/public/app:1", "oci:$c/bob-public:1");
    ok($ok, 'skopeo: bob can copy public/app:1 (his login works)')
        or diag $out;

    my @before = mirror_log();
    ($ok, $out) = run_env(\%env, @sk, 'login', @tls, '--authfile',
                          "$c/alice.json", '-u', 'alice', '-p', 'alice-pw',
                          $m);
    ok($ok, 'skopeo login as alice') or diag $out;
    ($ok, $out) = run_env(\%env, @sk, 'copy', '--src-cert-dir', "$c/certs",
                          '--src-authfile', "$c/alice.json",
                          "docker://$m/team-a/app:1", "oci:$c/alice:1");
    ok($ok, 'skopeo: alice copies team-a/app:1 through the mirror')
        or diag $out;
    my $index = eval { decode_json(slurp("$c/alice/index.json")) };
    is(eval { $index->{manifests}[0]{digest} }, $app->{digest},
       '... the manifest the registry has');
    my @got = grep { -f } map { "$c/alice/blobs/sha256/" . substr($_, 7) }
              @{ $app->{blobs} };
    is(scalar @got, scalar @{ $app->{blobs} }, '... with every blob');
    blobs_once('skopeo');

    my @all = mirror_log();
    my @sent = @all[@before .. $#all];
    ok(grep({ m{^GET /_registry/auth\?account=alice&service=\S+ 200 alice$} }
            @sent),
       'skopeo login: GET of the relay with account=, no scope')
        or diag(join "\n", @sent);
    ok(grep({ m{^GET /_registry/auth\?account=alice&scope=repository%3Ateam-a%2Fapp%3Apull&service=\S+ 200 alice$} }
            @sent),
       'skopeo copy: GET of the relay with account= and the scope');
    ok(grep({ m{^GET /v2/team-a/app/manifests/1 200 -$} } @sent),
       'skopeo copy: GET of the manifest by tag');
}

# --- podman --------------------------------------------------------------

SKIP: {
    skip 'podman is not installed (apt-get install podman)', 1
        unless $have{podman};
    my ($c, %env) = client_env('podman');
    my @pod = ('podman', '--root', "$c/root", '--runroot', "$c/runroot",
               '--storage-driver', 'vfs', '--tmpdir', "$c/tmp",
               '--cgroup-manager', 'cgroupfs', '--events-backend', 'file');
    my @tls = ('--cert-dir', "$c/certs");
    my @pull = ('pull', '--signature-policy', "$c/policy.json", @tls);

    my ($ok, $out) = run_env(\%env, @pod, 'login', @tls, '--authfile',
                             "$c/bob.json", '-u', 'bob', '-p', 'bob-pw', $m);
    ok($ok, 'podman login as bob') or diag $out;
    ($ok, $out) = run_env(\%env, @pod, @pull, '--authfile', "$c/bob.json",
                          "$m/team-a/app:1");
    ok(!$ok, 'podman: bob cannot pull team-a/app:1');
    like($out, qr/denied|unauthorized|authentication required/i,
         '... refused by the mirror') or diag $out;

    ($ok, $out) = run_env(\%env, @pod, 'login', @tls, '--authfile',
                          "$c/alice.json", '-u', 'alice', '-p', 'alice-pw',
                          $m);
    ok($ok, 'podman login as alice') or diag $out;
    ($ok, $out) = run_env(\%env, @pod, @pull, '--authfile', "$c/alice.json",
                          "$m/team-a/app:1");
    ok($ok, 'podman: alice pulls team-a/app:1 through the mirror')
        or diag $out;
    ($ok, $out) = run_env(\%env, @pod, 'image', 'inspect', '--format',
                          '{{.Digest}}', "$m/team-a/app:1");
    like($out, qr/^\Q$app->{digest}\E$/m, '... the manifest the registry has');
    if ($have{skopeo}) {
        blobs_once('podman after skopeo');
    } else {
        blobs_once('podman');
    }
}

# --- containerd ----------------------------------------------------------

SKIP: {
    skip 'containerd is not installed (apt-get install containerd)', 1
        unless $have{containerd} && $have{ctr};
    my ($cd, $sock) = start_containerd($d);
    ok($cd, 'containerd is up') or diag(slurp("$d/containerd.log"));

    # ctr speaks plain http to 127.0.0.1 unless a hosts.toml says https;
    # containerd 1.6 wants a [host] table, and falls back to "server"
    make_path("$d/certs.d/$m");
    spew("$d/certs.d/$m/hosts.toml", <<"EOF");
server = "https://$m"
ca = "$e->{ca}{crt}"

[host."https://$m"]
  capabilities = ["pull", "resolve"]
  ca = "$e->{ca}{crt}"
EOF
    my @ctr = ('ctr', '-a', $sock);
    my @pull = ('images', 'pull', '--snapshotter', 'native', '--hosts-dir',
                "$d/certs.d");

    my $out = run_out(@ctr, '-n', 'edge-bob', @pull, '--user', 'bob:bob-pw',
                      "$m/team-a/app:1");
    isnt($?, 0, 'ctr: bob cannot pull team-a/app:1');
    like($out, qr/denied|unauthorized|forbidden|40[13]/i,
         '... refused by the mirror') or diag $out;

    my @before = mirror_log();
    $out = run_out(@ctr, '-n', 'edge-alice', @pull, '--user',
                   'alice:alice-pw', "$m/team-a/app:1");
    is($?, 0, 'ctr: alice pulls team-a/app:1 through the mirror')
        or diag $out;
    $out = run_out(@ctr, '-n', 'edge-alice', 'images', 'check');
    like($out, qr/\Q$m\E\/team-a\/app:1\s.*complete/,
         '... containerd holds the whole image') or diag $out;
    $out = run_out(@ctr, '-n', 'edge-alice', 'images', 'ls');
    like($out, qr/\Q$app->{digest}\E/, '... the manifest the registry has')
        or diag $out;
    blobs_once('ctr after the others');

    my @all = mirror_log();
    my @sent = @all[@before .. $#all];
    like($sent[0] // '', qr{^HEAD /v2/team-a/app/manifests/1 401 -$},
         'ctr: first a HEAD of the tag without credentials, no /v2/ ping')
        or diag(join "\n", @sent);
    like($sent[1] // '', qr{^POST /_registry/auth \d+ -$},
         'ctr: then the OAuth2 POST form to the relay, no Authorization');
    ok(grep({ m{^HEAD /v2/team-a/app/manifests/1 200 -$} } @sent),
       'ctr: HEAD of the tag with the token: 200');
    stop($cd);
}

done_testing();

# --- the edge, until t/lib/Edge.pm lands ----------------------------------
# (its keys: reg, ca {crt, key}, mirror, mport, images {public, team_a,
# team_b} with digest and blobs; the mirror's log "clients" also names
# each request's Authorization scheme, for reading by hand)

sub edge {
    my $d = test_dir();
    my $ca = make_ca();
    # the mirror's certificate names the address clients dial
    spew("$d/mirror.ext", "subjectAltName=IP:127.0.0.1\n");
    run_ok('openssl', 'req', '-newkey', 'rsa:2048', '-nodes',
           '-keyout', "$d/mirror.key", '-out', "$d/mirror.csr",
           '-subj', '/CN=127.0.0.1');
    run_ok('openssl', 'x509', '-req', '-in', "$d/mirror.csr",
           '-CA', $ca->{crt}, '-CAkey', $ca->{key}, '-CAcreateserial',
           '-out', "$d/mirror.crt", '-days', '2',
           '-extfile', "$d/mirror.ext");

    run_ok('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
           '-keyout', "$d/signer.key", '-out', "$d/signer.crt", '-days', '2',
           '-subj', '/CN=token signer');
    spew("$d/users", "pusher:push-secret\nalice:alice-pw\nbob:bob-pw\n");
    my $tport = free_port();
    my $ts = spawn(cmd => ['perl', "$ROOT/t/lib/tokenserver.pl", $tport,
                           "$d/signer.key", "$d/signer.crt", 'test-issuer',
                           "$d/token.log", "$d/users"],
                   stdout => "$d/ts.out");
    wait_port($tport, pid => $ts) or die 'token server did not start';

    # bob may pull public/* only: his credentials are dropped for other
    # scopes, so the token server grants him what anonymous gets (a 200
    # with an empty grant, as Harbor answers); POST is not served (404).
    my $pport = free_port();
    my $bob = 'Ym9iOmJvYi1wdw==';
    start_nginx(plain => 1, ports => [$pport], http => <<"EOF");
    map "\$http_authorization|\$arg_scope" \$policy_auth {
        "~^Basic $bob\\|repository(:|%3A)public(/|%2F)"  \$http_authorization;
        "~^Basic $bob\\|."                             "";
        default                                        \$http_authorization;
    }
    server {
        listen 127.0.0.1:$pport;
        location = /token {
            if (\$request_method != GET) { return 404; }
            proxy_set_header Authorization \$policy_auth;
            proxy_pass http://127.0.0.1:$tport;
        }
    }
EOF
    my $up = make_cert($ca, 'harbor.test');
    my $reg = start_registry(config => token_auth($pport, $d), tls => $up);

    my %images;
    my $shared = { shared => "shared layer S\n" x 100 };
    my %want = (
        public => ['public/app:1', [$shared]],
        team_a => ['team-a/app:1', [$shared, { a => "private A\n" x 50 },
                                    map { { "l$_" => "layer $_\n" x $_ } }
                                    1 .. 3]],
        team_b => ['team-b/secret:1', [{ b => "private B\n" x 70 }]],
    );
    for my $k (sort keys %want) {
        my ($ref, $layers) = @{ $want{$k} };
        my $img = build_image(layers => $layers);
        run_ok('skopeo', '--insecure-policy', 'copy',
               '--dest-tls-verify=false', '--dest-creds',
               'pusher:push-secret', $img->{ref}, "docker://$reg->{host}/$ref");
        my $mf = decode_json(slurp(
            "$img->{layout}/blobs/sha256/" . substr(decode_json(
                slurp("$img->{layout}/index.json"))->{manifests}[0]{digest},
                7)));
        my $digest = decode_json(slurp("$img->{layout}/index.json"))
                     ->{manifests}[0]{digest};
        $images{$k} = { ref => $ref, digest => $digest,
                        blobs => [$mf->{config}{digest},
                                  map { $_->{digest} } @{ $mf->{layers} }] };
    }

    my $mport = free_port();
    my $mirror = start_nginx(ports => [$mport],
                             ca => slurp($SYSTEM_CA) . slurp($ca->{crt}),
                             http => <<"EOF");
    map \$http_authorization \$auth_scheme {
        "~^(?<auth_kind>[A-Za-z]+) "  \$auth_kind;
        default                       -;
    }
    log_format clients '\$request_method \$request_uri \$status '
                       '\$auth_scheme "\$content_type"';
    limit_req_zone \$binary_remote_addr zone=registry_login:1m rate=30r/m;
    registry_redirect_allow 127.0.0.1/32;
    registry_redirect_http on;
    upstream harbor.test { server 127.0.0.1:$reg->{port}; }
    registry harbor.test https://harbor.test auth=client;
    server {
        listen 127.0.0.1:$mport ssl;
        ssl_certificate $d/mirror.crt;
        ssl_certificate_key $d/mirror.key;
        access_log \@DIR\@/clients.log clients;
        access_log \@DIR\@/access.log;
        registry_default harbor.test;
        include $ROOT/registry_params;
        location = /_registry/auth {
            registry_auth_relay;
            limit_req zone=registry_login burst=10 nodelay;
        }
    }
EOF
    return { reg => $reg, tport => $pport, token_log => "$d/token.log",
             ca => $ca, mirror => $mirror, mport => $mport,
             images => \%images };
}
