#!/usr/bin/perl

# Tag history (registry_tag_history, registry_tag_history_api): every
# digest the mirror served for a tag, oldest first, with its media type,
# the Accept it answered and the times first and last seen; kept in the
# journal across a restart and in the zone across a reload, bounded per
# tag; a journal line that makes no sense is skipped with a warning; the
# JSON location refuses bad arguments with OCI errors.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Time::HiRes qw(time);
use RegistryTest;

my $reg = start_registry();
my @img = map { build_image(layers => [{ a => "history $_\n" }]) } 1 .. 3;

push_image($img[0], $reg, 'library/app:v1');
my @digest = (upstream_digest($reg, 'library/app', 'v1'));
my $type = http_get($reg->{port}, "/v2/library/app/manifests/$digest[0]",
                    method => 'HEAD', headers => [
                    'Accept: application/vnd.oci.image.manifest.v1+json'])
           ->{headers}{'content-type'}[0];
like($type, qr{^application/vnd\.}, "the image's media type: $type");

# the mirror's upstream is a plain nginx in front of the registry, so that
# it can be stopped
my $fport = free_port();
my $front = start_nginx(ports => [$fport], http => <<"EOF");
    server {
        listen 127.0.0.1:$fport;
        location / { proxy_pass $reg->{url}; }
    }
EOF

my $journal = test_dir() . '/tag-history';
my $port = free_port();
my $http = <<"EOF";
    registry docker.io http://127.0.0.1:$fport;
    registry_tag_valid 1s;
    registry_tag_history $journal entries=2;
    server {
        listen 127.0.0.1:$port;
        registry_default docker.io;
        location = /_registry/history {
            registry_tag_history_api;
            allow 127.0.0.1;
            deny all;
        }
        include $ROOT/registry_params;
    }
EOF
my $ng = start_nginx(ports => [$port], http => $http);

sub pull {
    my ($ref) = @_;
    return (skopeo_pull($port, "docker.io/library/app$ref"))[0, 1];
}

sub history {
    my ($args) = @_;
    return http_get($port, '/_registry/history?'
                    . ($args // 'registry=docker.io&repository=library/app'
                               . '&tag=v1'));
}

sub digests {
    my $r = history(@_);
    return join ' ', map { $_->{digest} } @{ $r->{json}{history} // [] };
}

# a pull, then a new image under the same tag once the tag's validity
# (1 s, kept by nginx in whole seconds) has passed
my $pulled;
sub pull_new {
    my ($i) = @_;
    push_image($img[$i], $reg, 'library/app:v1');
    push @digest, upstream_digest($reg, 'library/app', 'v1');
    wait_until($pulled + 2.1);
    my ($ok, $log) = pull(':v1');
    $pulled = time;
    ok($ok, "pull of image " . ($i + 1) . " as v1") or diag $log;
}

my ($ok, $log) = pull(':v1');
$pulled = time;
ok($ok, 'first pull of v1') or diag $log;
# skopeo asks by tag only; a pull by digest stores the manifest under it
($ok, $log) = pull("\@$digest[0]");
ok($ok, 'and by digest') or diag $log;

is(digests(), $digest[0], 'the history has the digest served');
for (1 .. 3) {
    ($ok, $log) = pull(':v1');
    ok($ok, "pull of v1 again ($_)") or diag $log;
}
is(scalar(my @l = file_lines($journal)), 1,
   'the journal has one line: a digest seen again is not written again');

pull_new(1);
isnt($digest[1], $digest[0], 'a different image as v1');

my $r = history();
is($r->{status}, 200, 'history: 200');
like($r->{headers}{'content-type'}[0], qr{^application/json},
     'history: JSON');
is(digests(), "$digest[0] $digest[1]", 'both digests, oldest first');
is_deeply([map { $_->{media_type} } @{ $r->{json}{history} }],
          [$type, $type], 'with their media types');
like($r->{json}{history}[0]{accept}, qr{application/vnd\.oci\.image\.manifest},
     'and the Accept they answered');
my $stamp = qr/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/;
ok(!grep({ $_->{first_seen} !~ $stamp || $_->{last_seen} !~ $stamp }
         @{ $r->{json}{history} }), 'times in RFC 3339, UTC');
ok($r->{json}{history}[0]{first_seen} le $r->{json}{history}[1]{first_seen},
   'the first seen first');
is_deeply([@{ $r->{json} }{qw(registry repository tag)}],
          ['docker.io', 'library/app', 'v1'], 'the tag named');
my @lines = file_lines($journal);
is(scalar @lines, 2, 'the journal has a line for each digest');

# --- the old digest, from the cache, upstream stopped ------------------------

stop($front->{pid});
($ok, $log) = pull("\@$digest[0]");
ok($ok, 'the old digest pulled by digest with the upstream stopped')
    or diag $log;

# --- restart: stop and start, the journal read back -------------------------

# the tag served stale, a second later: "last seen" moves on, in the zone
# only (written at most once a minute, and by a worker that exits)
my $seen = history()->{json}{history}[1]{last_seen};
wait_until(int(time) + 1.05);
($ok, $log) = pull(':v1');
ok($ok, 'v1 pulled with the upstream stopped') or diag $log;
my $before = history()->{json};
isnt($before->{history}[1]{last_seen}, $seen, 'its last seen moved on');
stop($ng->{pid});
$ng = start_nginx(ports => [$port], http => $http);
is_deeply(history()->{json}, $before, 'restart: the history is the same');
@lines = file_lines($journal);
is(scalar @lines, 2, 'restart: the journal is rewritten, one line an entry');

# --- reload: the zone is kept -------------------------------------------------

sub workers_started {
    return scalar grep { /start worker process/ }
                  file_lines("$ng->{dir}/error.log");
}
my $started = workers_started();
kill 'HUP', $ng->{pid};
ok(eventually(sub { workers_started() >= $started + 2 }, 10),
   'reload: new workers');
is_deeply(history()->{json}, $before, 'reload: the history is the same');

# --- bounded per tag: entries=2, a third digest drops the oldest -----------

$front = start_nginx(ports => [$fport], http => <<"EOF");
    server {
        listen 127.0.0.1:$fport;
        location / { proxy_pass $reg->{url}; }
    }
EOF
pull_new(2);
is(digests(), "$digest[1] $digest[2]", 'entries=2: the oldest dropped');
stop($ng->{pid});
$ng = start_nginx(ports => [$port], http => $http);
is(digests(), "$digest[1] $digest[2]", 'and so after a restart');

# --- a journal with lines that make no sense --------------------------------

stop($ng->{pid});
my $good = slurp($journal);
my $t = int time;
spew($journal, "garbage\n"
      . "$t $t docker.io library/app v1 sha256:1234 $type \n"
      . "$t $t docker.io library/app v1 $digest[0] text/html \n"
      . $good
      . "$t $t docker.io library/app v1 $digest[0]");
$ng = start_nginx(ports => [$port], http => $http);
is(digests(), "$digest[1] $digest[2]",
   'bad journal lines: nginx starts, the good lines are read');
my @warn = grep { /tag history .* skipped/ } file_lines("$ng->{dir}/error.log");
is(scalar @warn, 4, 'a warning for each bad line') or diag explain \@warn;
like($warn[0], qr/line 1: too few fields/, 'which says why');
like($warn[1], qr/line 2: invalid digest/, 'a bad digest');
like($warn[2], qr/line 3: invalid media type/, 'a bad media type');
like($warn[3], qr/not ended/, 'a line cut short');
ok(!grep({ /\[(alert|crit|emerg)\]/ } file_lines("$ng->{dir}/error.log")),
   'nothing worse than a warning');

# --- bounded in total: the zone's share, the least recently seen tags go ---

# a small zone: its history share is one page, a few tags
my $small_journal = test_dir() . '/small-history';
my $fake = 'a' x 64;
spew($small_journal, join '', map {
    "$t $t docker.io library/app t$_ sha256:$fake $type \n"
} 1 .. 50);
(my $small_http = $http) =~ s{\Q$journal\E}{$small_journal};
$small_http =~ s{(registry_tag_valid)}{registry_zone 64k;\n    $1};
my $sport = free_port();
$small_http =~ s{127\.0\.0\.1:$port}{127.0.0.1:$sport};
stop($ng->{pid});
$ng = start_nginx(ports => [$sport], http => $small_http);
sub small_history {
    my ($tag) = @_;
    return http_get($sport, '/_registry/history?registry=docker.io'
                            . "&repository=library/app&tag=$tag");
}
is(small_history('t50')->{status}, 200, 'total bound: the latest tag kept');
is(small_history('t1')->{status}, 404, 'the oldest dropped');
my $kept = grep { /^\d+ \d+ docker\.io library\/app t\d+ / }
           file_lines($small_journal);
ok($kept > 0 && $kept < 50, "the journal rewritten with what is kept ($kept)");

# the operator's own lines make it grow past four times the share: the
# next line written rewrites it from the zone
open my $fh, '>>', $small_journal or die "$small_journal: $!";
print $fh "# filler\n" x 5000;
close $fh;
my $grown = -s $small_journal;
$port = $sport;
($ok, $log) = pull(':v1');
ok($ok, 'a pull through the small mirror') or diag $log;
ok(-s $small_journal < $grown / 2,
   'the journal grown past its bound is rewritten: ' . (-s $small_journal)
   . " bytes, from $grown");
is(digests(), $digest[2], 'with what was just learnt');
ok(!grep({ /filler/ } file_lines($small_journal)), 'and without the rest');

# --- the JSON location refuses what is not a tag ---------------------------

for my $case (
    ['repository=library/app&tag=v1', 400, 'NAME_INVALID', 'no registry'],
    ['registry=docker.io&tag=v1', 400, 'NAME_INVALID', 'no repository'],
    ['registry=docker.io&repository=library/app', 400, 'TAG_INVALID',
     'no tag'],
    ['registry=docker.io&repository=Library/App&tag=v1', 400,
     'NAME_INVALID', 'an upper-case repository'],
    ['registry=docker.io&repository=library/app&tag=-v1', 400,
     'TAG_INVALID', 'a bad tag'],
    ['registry=docker.io&repository=library%2Fapp&tag=v1', 400,
     'NAME_INVALID', 'an escaped repository'],
    ['registry=docker.io&repository=library/app&tag=v2', 404,
     'MANIFEST_UNKNOWN', 'an unknown tag'],
    ['registry=DOCKER.IO&repository=library/app&tag=v1', 200, undef,
     'the registry in upper case'],
) {
    my ($args, $status, $code, $what) = @$case;
    my $r = history($args);
    is($r->{status}, $status, "$what: $status") or diag $r->{raw};
    next unless $code;
    is($r->{json}{errors}[0]{code}, $code, "$what: $code, as JSON")
        or diag $r->{raw};
}

$r = http_get($port, '/_registry/history?registry=docker.io'
                     . '&repository=library/app&tag=v1', method => 'POST');
is($r->{status}, 405, 'POST: 405');

done_testing();
