#!/usr/bin/perl

# Referrers and the tags that stand in for them.
#
# - distribution 2.8 has no referrers API: its 404 comes through as an OCI
#   error, and nothing is cached for it (a client then falls back to tags);
# - a registry that has the API (t/lib/referrers.pl) answers an OCI index:
#   it comes through with its media type, is a hit within
#   registry_tag_valid, fetched again after it (a changed index shows), is
#   served stale with that registry stopped; an artifactType filter is
#   passed on, with OCI-Filters-Applied, and cached apart from the
#   unfiltered list;
# - the fallback tags, sha256-<hex>.sig and .att as cosign pushes them,
#   work like any tag: the signature manifest and its layer are found
#   through the mirror (raw requests and skopeo) and stay pullable with the
#   upstream stopped and the tag's validity passed.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use Digest::SHA qw(sha256_hex);
use JSON::PP;
use Time::HiRes qw(time);
use RegistryTest;

my $json = JSON::PP->new->canonical;
my $index_type = 'application/vnd.oci.image.index.v1+json';
my $oci_manifest = 'application/vnd.oci.image.manifest.v1+json';

# --- upstreams ----------------------------------------------------------------

my $reg = start_registry();
my $img = build_image(layers => [{ app => "signed app\n" }]);
push_image($img, $reg, 'team/app:v1');
my $signed = upstream_digest($reg, 'team/app', 'v1');
like($signed, qr/^sha256:[0-9a-f]{64}$/, 'the image to sign is pushed');
(my $signed_hex = $signed) =~ s/^sha256://;

my $rd = test_dir() . '/referrers';
mkdir $rd or die "$rd: $!";
my $rp = free_port();
my $refs = spawn(cmd => ['perl', "$ROOT/t/lib/referrers.pl", $rp, $rd],
                 stdout => "$rd/stderr.log");
ok(wait_port($rp, pid => $refs), 'the referrers server listens');

my $sbom = 'application/vnd.example.sbom.v1+json';
my $sig = 'application/vnd.example.signature.v1+json';
sub descriptor {
    my ($type, $n) = @_;
    return { mediaType => $oci_manifest, artifactType => $type,
             digest => 'sha256:' . sha256_hex("$type $n"), size => 100 + $n };
}
sub set_index {
    spew("$rd/index.json", $json->encode({
        schemaVersion => 2, mediaType => $index_type, manifests => [@_] }));
}
set_index(descriptor($sbom, 1), descriptor($sig, 2));

sub upstream_count {
    my ($what) = @_;
    return scalar grep { $_ eq $what } file_lines("$rd/requests.log");
}

# --- the mirror -----------------------------------------------------------------

my $valid = 2;
my $port = free_port();
my $ng = start_nginx(ports => [$port], http => <<"EOF");
    registry sigs.test $reg->{url};
    registry refs.test http://127.0.0.1:$rp;
    registry_tag_valid ${valid}s;
    server {
        listen 127.0.0.1:$port;
        proxy_connect_timeout 2s;
        proxy_read_timeout 2s;
$MIRROR_PARAMS
    }
EOF

sub get { return http_get($port, @_) }
sub cache_status { return ($_[0]{headers}{'x-registry-cache'} // ['-'])->[0] }
sub header { return join "\n", @{ $_[0]{headers}{$_[1]} // [] } }
sub referrers_keys {
    return grep { m{/referrers/} } keys %{ cache_entries("$ng->{dir}/cache") };
}

# --- distribution 2.8: no referrers API ---------------------------------------

my $upath = "/v2/team/app/referrers/$signed";
my $r = get("/v2/sigs.test/team/app/referrers/$signed");
is($r->{status}, 404, 'distribution: referrers 404');
like(header($r, 'content-type'), qr{^application/json}, '... as JSON');
is(eval { $r->{json}{errors}[0]{code} }, 'MANIFEST_UNKNOWN',
   '... an OCI error body, MANIFEST_UNKNOWN');
is(at_least(1, sub { scalar grep { $_ eq "GET $upath" }
                     registry_requests($reg) }),
   1, '... the request reached distribution');
$r = get("/v2/sigs.test/team/app/referrers/$signed");
is($r->{status}, 404, 'asked again: 404 again');
is(at_least(2, sub { scalar grep { $_ eq "GET $upath" }
                     registry_requests($reg) }),
   2, '... from distribution, not from a cache');
is(scalar(referrers_keys()), 0, 'nothing cached for a 404 referrers answer');

# --- a registry with the referrers API -------------------------------------------

my $subject = 'sha256:' . sha256_hex('subject');
my $rpath = "/v2/refs.test/app/referrers/$subject";
my $rupstream = "GET /v2/app/referrers/$subject";

my $filled = time;
$r = get($rpath);
my $first = $r->{body};
is($r->{status}, 200, 'referrers: 200');
is(header($r, 'content-type'), $index_type, '... an OCI image index');
is(cache_status($r), 'MISS', '... MISS');
is_deeply([map { $_->{artifactType} } @{ $r->{json}{manifests} // [] }],
          [$sbom, $sig], '... the upstream\'s index');
is(header($r, 'oci-filters-applied'), '', '... no filter said to be applied');
is(upstream_count($rupstream), 1, '... fetched once from the upstream');

$r = get($rpath);
is($r->{status}, 200, 'again within validity: 200');
is(cache_status($r), 'HIT', '... a HIT');
is(header($r, 'content-type'), $index_type, '... still an OCI image index');
is($r->{body}, $first, '... the same index');
is(upstream_count($rupstream), 1, '... the upstream not asked again');

# the filter reaches the upstream, and its answer is cached apart
my $fpath = "$rpath?artifactType=$sbom";
$r = get($fpath);
is($r->{status}, 200, 'artifactType filter: 200');
is(header($r, 'content-type'), $index_type, '... an OCI image index');
is(header($r, 'oci-filters-applied'), 'artifactType',
   '... OCI-Filters-Applied: artifactType');
is_deeply([map { $_->{artifactType} } @{ $r->{json}{manifests} // [] }],
          [$sbom], '... only the filtered artifacts');
is(upstream_count("$rupstream?artifactType=$sbom"), 1,
   '... the filter passed on to the upstream');
my $filtered = $r->{body};
$r = get($fpath);
is(cache_status($r), 'HIT', 'filtered again: a HIT');
is(header($r, 'oci-filters-applied'), 'artifactType',
   '... still with OCI-Filters-Applied');
is($r->{body}, $filtered, '... the filtered index');

# each its own entry: filtered first, then unfiltered, for another subject
my $other = '/v2/refs.test/app/referrers/sha256:' . sha256_hex('other');
$r = get("$other?artifactType=$sig");
is(scalar @{ $r->{json}{manifests} // [] }, 1, 'another subject, filtered');
$r = get($other);
is(cache_status($r), 'MISS', '... then unfiltered: not the filtered entry');
is(scalar @{ $r->{json}{manifests} // [] }, 2, '... the whole list');
is(header($r, 'oci-filters-applied'), '', '... no filter said to be applied');

# a new referrer upstream: not seen within validity, seen after it
set_index(descriptor($sbom, 1), descriptor($sig, 2), descriptor($sbom, 3));
$r = get($rpath);
is($r->{body}, $first, 'index changed upstream: within validity, the old one');
is(upstream_count($rupstream), 1, '... the upstream not asked');

wait_until($filled + $valid + 1.1);
$r = get($rpath);
is($r->{status}, 200, 'validity passed: 200');
like(cache_status($r), qr/^(EXPIRED|REVALIDATED)$/,
     '... fetched again (' . cache_status($r) . ')');
is(upstream_count($rupstream), 2, '... one more request upstream');
is(scalar @{ $r->{json}{manifests} // [] }, 3, '... the new index');
is(header($r, 'content-type'), $index_type, '... an OCI image index');
my $second = $r->{body};
my $refilled = time;
$r = get($rpath);
is(cache_status($r), 'HIT', 'and then a HIT again');
is(upstream_count($rupstream), 2, '... the upstream not asked');

# the referrers registry stopped: the cached lists are served stale
stop($refs);
wait_until($refilled + $valid + 1.1);
$r = get($rpath);
is($r->{status}, 200, 'referrers registry stopped, validity passed: 200');
is(cache_status($r), 'STALE', '... STALE');
is($r->{body}, $second, '... the last index fetched');
is(header($r, 'content-type'), $index_type, '... an OCI image index');
$r = get($fpath);
is($r->{status}, 200, 'filtered, stopped: 200');
is(cache_status($r), 'STALE', '... STALE');
is($r->{body}, $filtered, '... the filtered index');
is(header($r, 'oci-filters-applied'), 'artifactType',
   '... with OCI-Filters-Applied');

# --- cosign-style signature and attestation tags ---------------------------------

# A blob pushed to team/app of the registry (one monolithic upload).
sub put_blob {
    my ($data) = @_;
    my $digest = 'sha256:' . sha256_hex($data);
    my $f = test_dir() . '/blob-' . sha256_hex($data);
    spew($f, $data);
    my $head = run_ok('curl', '-si', '-X', 'POST',
                      "$reg->{url}/v2/team/app/blobs/uploads/");
    my ($loc) = $head =~ /^Location:\s*(\S+)/mi or die "no upload: $head";
    $loc = "$reg->{url}$loc" if $loc =~ m{^/};
    my $sep = $loc =~ /\?/ ? '&' : '?';
    run_ok('curl', '-sf', '-X', 'PUT', '-H',
           'Content-Type: application/octet-stream',
           '--data-binary', "\@$f", "$loc${sep}digest=$digest");
    return { digest => $digest, size => length $data };
}

# An OCI image manifest as cosign writes one: an empty-ish config and one
# layer, the payload, with the signature in the layer's annotations.
# Pushed under $tag; returns the manifest's bytes, digest and layer.
sub push_cosign {
    my ($tag, $layer_type, $payload, $annotations) = @_;
    my $config = put_blob($json->encode({
        architecture => '', os => '', config => {},
        rootfs => { type => 'layers',
                    diff_ids => ['sha256:' . sha256_hex($payload)] } }));
    my $layer = put_blob($payload);
    my $manifest = $json->encode({
        schemaVersion => 2, mediaType => $oci_manifest,
        config => { mediaType => 'application/vnd.oci.image.config.v1+json',
                    %$config },
        layers => [{ mediaType => $layer_type, %$layer,
                     annotations => $annotations }] });
    my $f = test_dir() . "/manifest-$tag";
    spew($f, $manifest);
    run_ok('curl', '-sf', '-X', 'PUT', '-H', "Content-Type: $oci_manifest",
           '--data-binary', "\@$f", "$reg->{url}/v2/team/app/manifests/$tag");
    return { body => $manifest, digest => 'sha256:' . sha256_hex($manifest),
             layer => $layer->{digest}, payload => $payload };
}

my %art;
$art{sig} = push_cosign("sha256-$signed_hex.sig",
    'application/vnd.dev.cosign.simplesigning.v1+json',
    $json->encode({ critical => {
        identity => { 'docker-reference' => 'sigs.test/team/app' },
        image => { 'docker-manifest-digest' => $signed },
        type => 'cosign container image signature' }, optional => undef }),
    { 'dev.cosignproject.cosign/signature' => 'MEUCIQDtest+signature==' });
$art{att} = push_cosign("sha256-$signed_hex.att",
    'application/vnd.dsse.envelope.v1+json',
    $json->encode({ payloadType => 'application/vnd.in-toto+json',
                    payload => 'eyJfdHlwZSI6InRlc3QifQ==',
                    signatures => [{ sig => 'MEUCIQDtest' }] }),
    { 'dev.cosignproject.cosign/signature' => '',
      predicateType => 'https://slsa.dev/provenance/v0.2' });
is(upstream_digest($reg, 'team/app', "sha256-$signed_hex.sig"),
   $art{sig}{digest}, 'signature pushed to distribution by its tag');

my @accept = map { "Accept: $_" } $oci_manifest,
    'application/vnd.docker.distribution.manifest.v2+json', $index_type,
    'application/vnd.docker.distribution.manifest.list.v2+json';
my $mbase = '/v2/sigs.test/team/app';

sub skopeo_raw {
    my ($ref) = @_;
    my $out = run_out('skopeo', 'inspect', '--raw', '--tls-verify=false',
                      "docker://127.0.0.1:$port/sigs.test/team/app$ref");
    return ($? == 0, $out);
}

sub check_artifacts {
    my ($when, $stale) = @_;
    for my $kind (sort keys %art) {
        my $a = $art{$kind};
        my $tag = "sha256-$signed_hex.$kind";
        my $r = get("$mbase/manifests/$tag", headers => \@accept);
        is($r->{status}, 200, "$when: .$kind manifest by its tag");
        is($r->{body}, $a->{body}, "... the bytes pushed");
        is(header($r, 'content-type'), $oci_manifest,
           '... an OCI image manifest');
        is(header($r, 'docker-content-digest'), $a->{digest},
           '... its digest');
        is(cache_status($r), 'STALE', '... STALE') if $stale;
        my $ann = eval { $r->{json}{layers}[0]{annotations} } // {};
        ok(exists $ann->{'dev.cosignproject.cosign/signature'},
           '... with the signature annotation');

        $r = get("$mbase/manifests/$tag", method => 'HEAD',
                 headers => \@accept);
        is($r->{status}, 200, "$when: .$kind HEAD by its tag");
        is(header($r, 'docker-content-digest'), $a->{digest},
           '... its digest');

        $r = get("$mbase/blobs/$a->{layer}");
        is($r->{status}, 200, "$when: .$kind layer by digest");
        is($r->{body}, $a->{payload}, '... the payload');

        my ($ok, $out) = skopeo_raw(":$tag");
        ok($ok && $out eq $a->{body},
           "$when: skopeo inspect --raw of .$kind") or diag $out;
    }
}

check_artifacts('through the mirror');
my $fetched = time;

stop($reg->{pid});
ok(!kill(0, $reg->{pid}), 'distribution stopped');
wait_until($fetched + $valid + 1.1);
check_artifacts('upstream stopped, validity passed', 1);

done_testing();
