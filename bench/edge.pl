#!/usr/bin/perl

# The edge in front of a private Harbor (issue 11), side by side in one run
# on loopback ("make bench-edge"), on one mirror: t/lib/Edge.pm's TLS
# token-auth distribution registry, its token server in permissions mode,
# a logging nginx in front of the registry, and the mirror over TLS with
# "registry harbor.test ... auth=client" and the module's defaults
# (registry_auth_valid, the relay's limit_req of the example config).
#
#   manifest hits  wrk over TLS, the same threads and connections for each,
#                  after a warm-up run of each; ROUNDS short rounds (9 of
#                  2 s), interleaved in a different order each round, so
#                  that other load on the machine falls on all three
#                  alike; medians, and the ratio round by round:
#                    static      a plain nginx over TLS (same certificate,
#                                same logs, 2 workers) sending a static
#                                file of team-a/app's manifest bytes;
#                    anonymous   GET /v2/public/app/manifests/<digest>, no
#                                Authorization, a shared entry the
#                                anonymous pull filled;
#                    authorised  GET /v2/team-a/app/manifests/<digest> with
#                                alice's token, got through the mirror's
#                                relay (so the mirror keeps its grants),
#                                a private entry her pull filled.
#                  Both with docker's Accept lines (one header line each,
#                  as docker sends them).  Goal: authorised at least 0.8x
#                  of anonymous.
#   warm pulls     what a pull costs the upstream: docker's token request
#                  through the relay, then HEAD the tag, GET the manifest
#                  by digest, GET the config and the 5 layers; the
#                  registry's own log counts the requests that reached it,
#                  the token server's log the relayed token requests.
#                  alice's first pull (cold cache), her second pull, and
#                  the first pull of carol, a second user allowed team-a/*
#                  (added to the permissions file at runtime).
#
# Needs wrk and curl (apt-get install -y wrk curl, as "make bench") and
# what the test suite needs for this fixture (docker-registry skopeo umoci
# openssl).  Every server is started here on 127.0.0.1 and stopped by pid
# at the end.  ROUNDS, WRK_SECONDS, WRK_THREADS and WRK_CONNECTIONS scale
# it.

use strict;
use warnings;
use FindBin;
use lib "$FindBin::Bin/../t/lib";
use File::Path qw(make_path);
use RegistryTest;
use Edge;

my $rounds = $ENV{ROUNDS} // 9;
my $wrk_s = $ENV{WRK_SECONDS} // 2;
my $threads = $ENV{WRK_THREADS} // 1;
my $conns = $ENV{WRK_CONNECTIONS} // 32;

for my $tool (qw(wrk curl docker-registry skopeo umoci openssl)) {
    run_out('sh', '-c', "command -v $tool") =~ /\S/
        or die "bench needs $tool (apt-get install -y wrk curl)\n";
}

my $d = test_dir();

# --- the edge -----------------------------------------------------------------

print STDERR "setting up: TLS token-auth registry, token server, front, "
    . "mirror (auth=client), static nginx\n";
my $e = Edge::start();
my %img = %{ $e->{images} };

my ($crt, $key) = @{ $e->{mirror_cert} };
my $sport = free_port();
make_path("$d/static");
spew("$d/static/manifest", $img{team_a}{manifest});
chmod 0755, "$d/static";
chmod 0644, "$d/static/manifest";
start_nginx(plain => 1, ports => [$sport], http => <<"EOF");
    server {
        listen 127.0.0.1:$sport ssl;
        ssl_certificate $crt;
        ssl_certificate_key $key;
        root $d/static;
        default_type $img{team_a}{media_type};
    }
EOF

# Requests that reached the registry and the token server while $code ran.
sub upstream_cost {
    my ($code) = @_;
    my $tokens = () = file_lines($e->{token_log});
    my $m = Edge::mark($e);
    my $ok = $code->();
    Edge::mark($e);
    my @up = Edge::upstream_since($e, $m);
    my @t = file_lines($e->{token_log});
    return { ok => $ok, up => \@up, relay => @t - $tokens,
             blob_gets => scalar(grep { /^GET .*\/blobs\// } @up) };
}

# docker's pull: a token through the relay, then the pull with it
sub docker_pull {
    my ($user, $image) = @_;
    my $tok;
    my $cost = upstream_cost(sub {
        ($tok) = Edge::token($e, $user, $e->{users}{$user},
                             "repository:$image->{repo}:pull");
        return 0 unless $tok;
        my $p = Edge::pull($e, $tok, $image, who => $user);
        print STDERR "$user pull of $image->{ref}: @{ $p->{status} }\n"
            unless $p->{ok};
        return $p->{ok};
    });
    return ($tok, $cost);
}

# --- warm-up: the fills, and the first pulls' cost ----------------------------

my %pull;
my $anon = Edge::pull($e, undef, $img{public}, who => 'anonymous');
die "anonymous pull of public/app: @{ $anon->{status} }\n" unless $anon->{ok};
my $alice;
($alice, $pull{'alice, first pull (cold cache)'}) =
    docker_pull('alice', $img{team_a});
die "alice's first pull failed\n" unless $alice;

my %target = (
    static => { path => '/manifest', port => $sport, headers => [] },
    anonymous => { path => "/v2/public/app/manifests/$img{public}{digest}",
                   headers => [] },
    authorised => {
        path => "/v2/team-a/app/manifests/$img{team_a}{digest}",
        headers => [Edge::bearer($alice)] },
);
my @order = qw(static anonymous authorised);

for my $t (qw(anonymous authorised)) {
    my $r = Edge::https($e, 'GET', $target{$t}{path}, who => $t,
                        headers => [@{ $target{$t}{headers} },
                                    @Edge::ACCEPT]);
    my $cache = $r->{headers}{'x-registry-cache'}[0] // '-';
    die "$t manifest: $r->{status} $cache\n"
        unless $r->{status} == 200 && $cache eq 'HIT';
}

# --- manifest hits with wrk ---------------------------------------------------

# docker's Accept lines, one header line each: wrk keeps headers in a
# table by name, so the later lines ride in the first one's value
my @types = map { s/^Accept: //r } @Edge::ACCEPT;
spew("$d/accept.lua", 'wrk.headers["Accept"] = "'
     . join('\r\nAccept: ', @types) . "\"\n");

sub wrk {
    my ($t, $seconds) = @_;
    my $port = $target{$t}{port} // $e->{mport};
    my $out = run_ok('wrk', '-t', $threads, '-c', $conns, '-d', "${seconds}s",
                     '-s', "$d/accept.lua",
                     (map { ('-H', $_) } @{ $target{$t}{headers} }),
                     "https://127.0.0.1:$port$target{$t}{path}");
    my ($rps) = $out =~ /Requests\/sec:\s*([\d.]+)/;
    my ($non2xx) = $out =~ /Non-2xx or 3xx responses:\s*(\d+)/;
    my ($errors) = $out =~ /Socket errors:\s*(.*)/;
    die "wrk $t: errors\n$out" if $non2xx || $errors || !$rps;
    return $rps;
}

print STDERR "manifest hits: $rounds rounds of ${wrk_s}s each, wrk "
    . "$threads thread(s) $conns connections\n";
wrk($_, 1) for @order;                                  # warm-up
my %rps;
my $during = upstream_cost(sub {
    for my $i (1 .. $rounds) {
        my @o = @order;
        push @o, shift @o for 1 .. $i % @o;
        push @{ $rps{$_} }, wrk($_, $wrk_s) for @o;
    }
    return 1;
});

for my $t (qw(anonymous authorised)) {
    my $r = Edge::https($e, 'GET', $target{$t}{path}, who => $t,
                        headers => [@{ $target{$t}{headers} },
                                    @Edge::ACCEPT]);
    my $cache = $r->{headers}{'x-registry-cache'}[0] // '-';
    die "$t manifest after the rounds: $r->{status} $cache\n"
        unless $r->{status} == 200 && $cache eq 'HIT';
}

# --- warm pulls ---------------------------------------------------------------

(undef, $pull{'alice, second pull'}) = docker_pull('alice', $img{team_a});
Edge::set_perms($e, carol => 'carol-pw:team-a/*');
$e->{users}{carol} = 'carol-pw';
(undef, $pull{'carol, first pull (second user)'}) =
    docker_pull('carol', $img{team_a});

# --- report -------------------------------------------------------------------

print machine_line('nginx');
printf "manifest hits by digest over TLS: %d rounds (medians), wrk %ds "
       . "%d thread(s) %d connections\n\n", $rounds, $wrk_s, $threads,
       $conns;

my %med = map { $_ => median(@{ $rps{$_} }) } @order;
print "| manifest hit | requests/s (median) | rounds | x anonymous |\n"
    . "|---|---|---|---|\n";
for my $t (@order) {
    printf "| %s | %.0f | %s | %.2f |\n", $t, $med{$t},
           join(' ', map { sprintf '%.0f', $_ } @{ $rps{$t} }),
           $med{$t} / $med{anonymous};
}
# the same ratio within each round too: the two ran seconds apart, so
# other load on the machine moves both
my @ratio = map { $rps{authorised}[$_] / $rps{anonymous}[$_] }
            0 .. $rounds - 1;
printf "\nauthorised / anonymous: %.2fx of the medians, %.2fx the median "
       . "round (rounds: %s); goal: at least 0.8x\n"
       . "upstream requests during the rounds: %d registry, %d relay\n\n",
       $med{authorised} / $med{anonymous}, median(@ratio),
       join(' ', map { sprintf '%.2f', $_ } @ratio),
       scalar @{ $during->{up} }, $during->{relay};

print "| pull of team-a/app:1 (5 layers) | registry requests | blob GETs "
    . "| token relay requests | pull ok |\n|---|---|---|---|---|\n";
for my $k ('alice, first pull (cold cache)', 'alice, second pull',
           'carol, first pull (second user)') {
    my $c = $pull{$k};
    printf "| %s | %d | %d | %d | %s |\n", $k, scalar @{ $c->{up} },
           $c->{blob_gets}, $c->{relay}, $c->{ok} ? 'yes' : 'NO';
}
print "\nregistry requests of the pulls:\n";
for my $k ('alice, first pull (cold cache)', 'alice, second pull',
           'carol, first pull (second user)') {
    print "  $k: ", join(', ', @{ $pull{$k}{up} }) || 'none', "\n";
}
