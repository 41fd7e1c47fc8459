package Edge;

# The fixture of the edge tests (issue 11): a private Harbor as the tests
# can have it, and the mirror in front of it, over TLS.
#
#   my $e = Edge::start(%opt);
#
# starts
# - a token server in permissions mode (t/lib/tokenserver.pl --perms) on
#   $e->{tport}, signing with $e->{signer}; its log $e->{token_log} has one
#   line "METHOD user scope..." a request (refused logins "!user"), and,
#   after seeding, only the mirror's relay writes to it;
# - a second one on $e->{tport2} with its own key ($e->{signer2}), the same
#   permissions, log $e->{token_log2}: for tokens the tests fetch
#   directly, which the mirror never sees through its relay;
# - a CNCF distribution registry $e->{reg} (start_registry's hash) over TLS
#   (certificate for harbor.test and 127.0.0.1 from the test CA), token
#   auth with realm http://127.0.0.1:<tport>/token, service
#   "test-registry", trusting both signers ($e->{bundle});
# - the mirror $e->{mirror} (start_nginx's hash) on $e->{mport}, over TLS
#   (certificate for mirror.test, localhost and 127.0.0.1 from the same
#   CA, $e->{ca}{crt}, which clients trust), 2 workers, the config of
#   PLAN.md: "registry harbor.test https://harbor.test auth=client" (an
#   upstream{} block harbor.test names the registry's port, as t/tls.t
#   does, so TLS verifies the name harbor.test), "registry other.test
#   https://harbor.test" (the same upstream, anonymous as today),
#   registry_default harbor.test, the relay location /_registry/auth with
#   limit_req; clients use the host "127.0.0.1:<mport>" ($e->{host});
# - between the two, a plain nginx over TLS ($e->{front}, port $e->{fport},
#   the harbor.test upstream{} of the mirror) logging every request with
#   its Authorization ($e->{front_log}): who asked the registry for what.
#   Stop it and the registry ($e->{reg}{pid}) for an upstream that is
#   down.
#
# Users ($e->{users}{name} = password; the permissions file $e->{perms},
# read again by the token servers on every request: set_perms rewrites
# it):
#   alice:alice-pw   pull team-a/*, public/*
#   bob:bob-pw       pull public/*
#   tess:tess-pw     pull team-b/*
#   dave:dave-pw     pull team-a/*, public/*, tokens live $opt{short_life}
#                    (3) seconds
#   pusher:push-secret  push and pull on everything (seeding)
#   anonymous        pull public/*
#
# Images, pushed by pusher with skopeo ($e->{images}{public}, {team_a},
# {team_b}: repo, tag, ref, digest (of the manifest), manifest (its
# bytes), media_type, config, layers [digests], blobs [config, layers]):
#   public/app:1    layers S, P
#   team-a/app:1    layers S, A, A2, A3, A4 (5 layers)
#   team-b/secret:1 layer B
# $e->{shared_blob} = S, $e->{private_blob_a} = A (only in team-a),
# $e->{private_blob_b} = B (only in team-b), $e->{public_blob} = P.
#
# Options: lists ("allow=FILE block=FILE" on harbor.test's registry line),
# auth_valid ("2s": registry_auth_valid; default: none, the
# module's own), auth_realm (registry_auth_realm), login_rate ("120r/m")
# and login_burst (60) of the relay's limit_req, short_life (3), no_mirror.
#
# Helpers (all take $e first):
#   mirror(%opt)           another mirror on the same upstream, same options
#                          as start; returns {mirror, mport}
#   https($method, $path, %o)  a request over TLS with curl (exact path,
#                          --path-as-is); o: port, headers [...], body
#                          (a form), from (source address), who (a label
#                          kept with the answer for leak checks); returns
#                          http_raw's hash
#   challenge($r)          the Bearer challenge of an answer as a hash
#   token($user, $pw, @scopes)  docker's token request through the relay
#                          (ping /v2/, then GET the realm with account=,
#                          client_id=docker, offline_token=true, scope=,
#                          service=, Basic); $user undef: anonymous.
#                          Returns (token, answer)
#   direct_token($user, $pw, @scopes)  from the second token server
#   pull($token, $image, %o)   docker's pull: HEAD the tag with docker's
#                          Accept lines, GET the manifest by digest, GET
#                          config and layers; o: prefix ("other.test/"),
#                          port.  Returns {ok, status => [..], answers}
#   bearer($token)         the header line
#   set_perms(%users)      user => "patterns" (undef: removed); others kept
#   restart_registry(%o)   o: bundle => [cert files]; same port and data
#   mark()                 a marker request through the front to the
#                          registry, waited for in both logs
#   upstream_since($mark)  the registry's request lines after $mark (the
#                          markers left out)
#   front_since($mark)     the front's, as [request, whose token, the
#                          Authorization line]
#   claims($token)         a JWT's claims
#   tokens_seen()          every token and refresh token the helpers got

use strict;
use warnings;
use Digest::SHA qw(sha256_hex);
use File::Path qw(make_path);
use JSON::PP;
use MIME::Base64;
use RegistryTest;

our @ACCEPT = map { "Accept: $_" } (
    'application/vnd.docker.distribution.manifest.v2+json',
    'application/vnd.docker.distribution.manifest.list.v2+json',
    'application/vnd.oci.image.index.v1+json',
    'application/vnd.oci.image.manifest.v1+json',
    'application/vnd.docker.distribution.manifest.v1+prettyjws');

my $seq = 0;

sub signer {
    my ($d, $n) = @_;
    run_ok('openssl', 'req', '-x509', '-newkey', 'rsa:2048', '-nodes',
           '-keyout', "$d/$n.key", '-out', "$d/$n.crt", '-days', '2',
           '-subj', "/CN=token $n");
    return { key => "$d/$n.key", crt => "$d/$n.crt" };
}

sub perms_text {
    my ($p) = @_;
    return join '', map { "$_:$p->{$_}\n" } sort keys %$p;
}

sub start {
    my (%o) = @_;
    my $d = test_dir() . '/edge-' . ++$seq;
    make_path($d);
    my $e = { dir => $d, opt => \%o, responses => [], seen => {} };
    $e->{users} = { alice => 'alice-pw', bob => 'bob-pw', tess => 'tess-pw',
                    dave => 'dave-pw', pusher => 'push-secret' };
    my $life = $o{short_life} // 3;
    $e->{grants} = {
        alice  => 'alice-pw:team-a/*,public/*',
        bob    => 'bob-pw:public/*',
        tess   => 'tess-pw:team-b/*',
        dave   => "dave-pw:team-a/*,public/*:$life",
        pusher => 'push-secret:push:*',
    };
    $e->{perms} = "$d/perms";
    spew($e->{perms}, perms_text($e->{grants}));

    $e->{signer} = signer($d, 'signer');
    $e->{signer2} = signer($d, 'signer2');
    $e->{bundle} = "$d/bundle.crt";
    spew($e->{bundle}, slurp($e->{signer}{crt}) . slurp($e->{signer2}{crt}));

    for my $i ('', '2') {
        my $port = free_port();
        my $s = $e->{"signer$i"};
        my $pid = spawn(cmd => ['perl', "$ROOT/t/lib/tokenserver.pl",
                                '--perms', $e->{perms}, $port, $s->{key},
                                $s->{crt}, 'test-issuer', "$d/token$i.log"],
                        stdout => "$d/ts$i.out");
        wait_port($port, pid => $pid) or die "token server did not start";
        $e->{"tport$i"} = $port;
        $e->{"token_log$i"} = "$d/token$i.log";
        $e->{"ts$i"} = $pid;
    }

    $e->{ca} = make_ca();
    $e->{reg_cert} = make_cert($e->{ca}, 'harbor.test', 'IP:127.0.0.1');
    $e->{reg} = start_registry(
        tls => $e->{reg_cert},
        config => <<"EOF");
auth:
  token:
    realm: http://127.0.0.1:$e->{tport}/token
    service: test-registry
    issuer: test-issuer
    rootcertbundle: $e->{bundle}
EOF
    seed($e);
    unlink $e->{token_log}, $e->{token_log2};
    front($e);

    return $e if $o{no_mirror};
    my $m = mirror($e, %o);
    $e->{mirror} = $m->{mirror};
    $e->{mport} = $m->{mport};
    $e->{host} = "127.0.0.1:$m->{mport}";
    return $e;
}

# Three images in one OCI layout; the shared layer S is the same folder
# inserted at the same path, so its bytes (and digest) are the same.
sub seed {
    my ($e) = @_;
    my $d = "$e->{dir}/images";
    make_path($d);
    my %src;
    for my $l (qw(S P A A2 A3 A4 B)) {
        make_path("$d/src/$l");
        spew("$d/src/$l/content", "layer $l of the edge tests\n" . ($l x 64));
        utime 1700000000, 1700000000, "$d/src/$l/content", "$d/src/$l";
    }
    my %images = (
        public => ['public/app', [qw(S P)]],
        team_a => ['team-a/app', [qw(S A A2 A3 A4)]],
        team_b => ['team-b/secret', [qw(B)]],
    );
    run_ok('umoci', 'init', '--layout', "$d/oci");
    for my $k (sort keys %images) {
        my ($repo, $layers) = @{ $images{$k} };
        run_ok('umoci', 'new', '--image', "$d/oci:$k");
        run_ok('umoci', 'insert', '--image', "$d/oci:$k", "$d/src/$_",
               "/$_") for @$layers;
        run_ok('skopeo', '--insecure-policy', 'copy',
               '--dest-tls-verify=false', '--dest-creds',
               'pusher:push-secret', "oci:$d/oci:$k",
               "docker://$e->{reg}{host}/$repo:1");
    }
    # what the registry holds, asked with pusher's token
    for my $k (sort keys %images) {
        my ($repo, $layers) = @{ $images{$k} };
        my $t = http_get($e->{tport}, "/token?service=test-registry&scope="
                         . "repository:$repo:pull", headers => [
                         'Authorization: Basic '
                         . encode_base64('pusher:push-secret', '')]);
        my $jwt = decode_json($t->{body})->{token};
        my $r = https($e, 'GET', "/v2/$repo/manifests/1",
                      port => $e->{reg}{port},
                      headers => ["Authorization: Bearer $jwt", @ACCEPT]);
        die "seeded $repo: $r->{status}" unless $r->{status} == 200;
        my $m = decode_json($r->{body});
        my @l = map { $_->{digest} } @{ $m->{layers} };
        $e->{images}{$k} = {
            repo => $repo, tag => '1', ref => "$repo:1",
            digest => 'sha256:' . sha256_hex($r->{body}),
            manifest => $r->{body},
            media_type => $r->{headers}{'content-type'}[0],
            config => $m->{config}{digest}, layers => \@l,
            blobs => [$m->{config}{digest}, @l],
            named => { map { $layers->[$_] => $l[$_] } 0 .. $#l },
        };
    }
    my $i = $e->{images};
    die 'the shared layer differs between public/app and team-a/app'
        unless $i->{public}{named}{S} eq $i->{team_a}{named}{S};
    $e->{shared_blob} = $i->{public}{named}{S};
    $e->{public_blob} = $i->{public}{named}{P};
    $e->{private_blob_a} = $i->{team_a}{named}{A};
    $e->{private_blob_b} = $i->{team_b}{named}{B};
}

# A plain nginx over TLS in front of the registry (the mirror's upstream
# harbor.test), which logs each request with its Authorization: whose
# token went upstream for what.
sub front {
    my ($e) = @_;
    my $port = free_port();
    my ($crt, $key) = @{ $e->{reg_cert} };
    $e->{front} = start_nginx(plain => 1, ports => [$port], http => <<"EOF");
    log_format auth '\$request "\$http_authorization"';
    server {
        listen 127.0.0.1:$port ssl;
        ssl_certificate $crt;
        ssl_certificate_key $key;
        access_log \@DIR\@/front.log auth;
        location / {
            proxy_pass https://127.0.0.1:$e->{reg}{port};
            proxy_http_version 1.1;
            proxy_set_header Host \$http_host;
            proxy_buffering off;
        }
    }
EOF
    $e->{fport} = $port;
    $e->{front_log} = "$e->{front}{dir}/front.log";
}

sub mirror {
    my ($e, %o) = @_;
    my $mport = free_port();
    $e->{mirror_cert} //= make_cert($e->{ca}, 'mirror.test', 'DNS:localhost',
                                    'IP:127.0.0.1');
    my ($crt, $key) = @{ $e->{mirror_cert} };
    my $valid = $o{auth_valid} ? "registry_auth_valid $o{auth_valid};" : '';
    my $realm = $o{auth_realm} ? "registry_auth_realm $o{auth_realm};" : '';
    my $rate = $o{login_rate} // '120r/m';
    my $burst = $o{login_burst} // 60;
    my $lists = $o{lists} // '';        # "allow=FILE block=FILE"
    my $m = start_nginx(ports => [$mport],
                        ca => slurp($SYSTEM_CA) . slurp($e->{ca}{crt}),
                        http => <<"EOF");
    limit_req_zone \$binary_remote_addr zone=registry_login:1m rate=$rate;
    upstream harbor.test { server 127.0.0.1:$e->{fport}; }
    registry_redirect_allow 127.0.0.1/32;
    registry_redirect_http on;
    registry harbor.test https://harbor.test auth=client $lists;
    registry other.test https://harbor.test;
    server {
        listen 127.0.0.1:$mport ssl;
        ssl_certificate $crt;
        ssl_certificate_key $key;
        registry_default harbor.test;
        $valid
        $realm
$MIRROR_PARAMS
        location = /_registry/auth {
            registry_auth_relay;
            limit_req zone=registry_login burst=$burst nodelay;
        }
    }
EOF
    return { mirror => $m, mport => $mport };
}

sub https {
    my ($e, $method, $path, %o) = @_;
    my $port = $o{port} // $e->{mport};
    my @cmd = ('curl', '-s', '-i', '--http1.1', '--path-as-is', '--noproxy',
               '*', '--cacert', $e->{ca}{crt}, '--max-time', '60');
    push @cmd, $method eq 'HEAD' ? ('-I') : ('-X', $method);
    push @cmd, '--interface', $o{from} if $o{from};
    push @cmd, map { ('-H', $_) } @{ $o{headers} // [] };
    push @cmd, '-H', 'Content-Type: application/x-www-form-urlencoded',
               '--data-binary', $o{body} if defined $o{body};
    push @cmd, "https://127.0.0.1:$port$path";
    my $pid = open(my $fh, '-|') // die "fork: $!";
    if ($pid == 0) {
        open STDERR, '>', '/dev/null';
        exec @cmd or die "exec curl: $!";
    }
    binmode $fh;
    my $buf = do { local $/; <$fh> } // '';
    close $fh;
    # curl shows a 100 Continue's head before the answer's
    $buf =~ s/^HTTP\/1\.1 100[^\r\n]*\r\n\r\n//;
    my ($head, $body) = split /\r\n\r\n/, $buf, 2;
    $head //= '';
    my ($status) = $head =~ m{^HTTP/1\.[01] (\d{3})};
    my %h;
    for (split /\r\n/, $head) {
        next unless /^([^:]+):\s*(.*)$/;
        push @{ $h{lc $1} }, $2;
    }
    $body //= '';
    my $json = eval { decode_json($body) };
    my $r = { status => $status // 0, headers => \%h, body => $body,
              json => $json, raw => $buf, method => $method, path => $path,
              who => $o{who} // '' };
    push @{ $e->{responses} }, $r if ($o{port} // 0) != ($e->{reg}{port} // -1);
    return $r;
}

sub challenge {
    my ($r) = @_;
    my ($c) = grep { /^Bearer /i } @{ $r->{headers}{'www-authenticate'} // [] };
    return {} unless $c;
    my %p = $c =~ /(\w+)="([^"]*)"/g;
    return \%p;
}

sub esc {
    my ($s) = @_;
    $s =~ s/([^A-Za-z0-9_.~-])/sprintf '%%%02X', ord $1/ge;
    return $s;
}

sub bearer { return "Authorization: Bearer $_[0]" }

sub basic {
    my ($u, $p) = @_;
    return 'Authorization: Basic ' . encode_base64("$u:$p", '');
}

# The relay's path, from the mirror's own challenge on /v2/.
sub realm_path {
    my ($e, %o) = @_;
    my $port = $o{port} // $e->{mport};
    return $e->{realm}{$port} if $e->{realm}{$port};
    my $r = https($e, 'GET', '/v2/', port => $port);
    my $c = challenge($r);
    my ($path) = ($c->{realm} // '') =~ m{^https://[^/]+(/.*)$};
    $e->{service}{$port} = $c->{service};
    return $e->{realm}{$port} = $path // '/_registry/auth';
}

sub token {
    my ($e, $user, $pw, @scopes) = @_;
    my %o = ref $scopes[-1] eq 'HASH' ? %{ pop @scopes } : ();
    my $port = $o{port} // $e->{mport};
    my $path = realm_path($e, port => $port);
    my @q;
    push @q, 'account=' . esc($user) if defined $user;
    push @q, 'client_id=docker';
    push @q, 'offline_token=true' if defined $user;
    push @q, map { 'scope=' . esc($_) } @scopes;
    push @q, 'service=' . esc($e->{service}{$port} // 'harbor.test');
    my $r = https($e, 'GET', "$path?" . join('&', @q), port => $port,
                  who => $user // 'anonymous',
                  headers => [defined $user ? basic($user, $pw) : (),
                              'User-Agent: docker/24.0.7 go/go1.20.10']);
    my $t = eval { $r->{json}{token} // $r->{json}{access_token} };
    note_seen($e, $user, $t, eval { $r->{json}{refresh_token} });
    return ($t, $r);
}

sub note_seen {
    my ($e, $user, @t) = @_;
    $e->{seen}{$_} = $user // 'anonymous' for grep { defined } @t;
}

sub tokens_seen { return $_[0]{seen} }

sub direct_token {
    my ($e, $user, $pw, @scopes) = @_;
    my $q = join '&', 'service=test-registry',
            map { 'scope=' . esc($_) } @scopes;
    my $r = http_get($e->{tport2}, "/token?$q", headers => [
                     defined $user ? basic($user, $pw) : ()]);
    my $t = eval { decode_json($r->{body})->{token} };
    note_seen($e, $user, $t);
    return $t;
}

sub claims {
    my ($t) = @_;
    my (undef, $p) = split /\./, $t // '';
    $p //= '';
    $p =~ tr{-_}{+/};
    return eval { decode_json(decode_base64($p)) } // {};
}

sub pull {
    my ($e, $token, $img, %o) = @_;
    my $pre = $o{prefix} // '';
    my @auth = defined $token ? (bearer($token)) : ();
    my %a = (port => $o{port}, who => $o{who});
    my $res = { ok => 1, status => [], answers => [] };
    my $add = sub {
        my ($r, $digest) = @_;
        push @{ $res->{status} }, $r->{status};
        push @{ $res->{answers} }, $r;
        $res->{ok} = 0 if $r->{status} != 200;
        $res->{ok} = 0 if $digest && $r->{method} eq 'GET'
                          && 'sha256:' . sha256_hex($r->{body}) ne $digest;
    };
    my $r = https($e, 'HEAD', "/v2/$pre$img->{repo}/manifests/$img->{tag}",
                  %a, headers => [@auth, @ACCEPT]);
    $add->($r);
    return $res unless $r->{status} == 200;
    my $digest = $r->{headers}{'docker-content-digest'}[0] // '';
    $res->{ok} = 0 if $digest ne $img->{digest};
    $r = https($e, 'GET', "/v2/$pre$img->{repo}/manifests/$img->{digest}",
               %a, headers => [@auth, @ACCEPT]);
    $add->($r, $img->{digest});
    for my $b (@{ $img->{blobs} }) {
        $add->(https($e, 'GET', "/v2/$pre$img->{repo}/blobs/$b", %a,
                     headers => [@auth]), $b);
    }
    return $res;
}

sub set_perms {
    my ($e, %u) = @_;
    for (keys %u) {
        if (defined $u{$_}) {
            $e->{grants}{$_} = $u{$_};
        } else {
            delete $e->{grants}{$_};
        }
    }
    my $tmp = "$e->{perms}.new";
    spew($tmp, perms_text($e->{grants}));
    rename $tmp, $e->{perms} or die "rename: $!";
}

sub restart_registry {
    my ($e, %o) = @_;
    my $reg = $e->{reg};
    spew($e->{bundle}, join '', map { slurp($_) } @{ $o{bundle} })
        if $o{bundle};
    stop($reg->{pid});
    $reg->{pid} = spawn(cmd => ['docker-registry', 'serve',
                                "$reg->{dir}/config.yml"],
                        stdout => $reg->{log});
    wait_port($reg->{port}, pid => $reg->{pid})
        or die "registry did not start again:\n" . slurp($reg->{log});
}

# The front's request lines as [request, whose, Authorization] (whose: a
# token's "sub", "basic:<user>", "bearer:?" for a token that is no JWT,
# or "-").
sub front_requests {
    my ($e) = @_;
    return map {
        my ($req, $auth) = /^(\S+ \S+) \S+ "(.*)"$/ ? ($1, $2) : ($_, '-');
        my $who = $auth eq '-' || $auth eq '' ? '-'
                : $auth =~ /^Basic (\S+)/
                    ? 'basic:' . (split /:/, decode_base64($1))[0]
                : $auth =~ /^Bearer (\S+)/
                    ? (claims($1)->{sub} // 'bearer:?')
                : '?';
        [$req, $who, $auth];
    } file_lines($e->{front_log});
}

my $marks = 0;
sub mark {
    my ($e) = @_;
    my $n = ++$marks;
    my $line = "GET /v2/?edge-mark=$n";
    https($e, 'GET', "/v2/?edge-mark=$n", port => $e->{fport});
    my %m;
    eventually(sub {
        my @l = registry_requests($e->{reg});
        my @f = map { $_->[0] } front_requests($e);
        ($m{reg}) = grep { $l[$_ - 1] eq $line } 1 .. @l;
        ($m{front}) = grep { $f[$_ - 1] eq $line } 1 .. @f;
        return $m{reg} && $m{front};
    }, 10) or die "mark $n never reached the registry's and front's logs";
    return \%m;
}

sub upstream_since {
    my ($e, $mark) = @_;
    my @l = registry_requests($e->{reg});
    return grep { !/edge-mark=/ } @l[$mark->{reg} .. $#l];
}

sub front_since {
    my ($e, $mark) = @_;
    my @l = front_requests($e);
    return grep { $_->[0] !~ /edge-mark=/ } @l[$mark->{front} .. $#l];
}

1;
