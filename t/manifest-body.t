#!/usr/bin/perl

# The manifest reader (what a body's digest does not settle: its
# top-level mediaType, a schema 1 JWS payload) on its own: table tests,
# then mutated manifests, all through a build with AddressSanitizer and
# UBSan where the compiler has them, so that no body makes it read or
# write outside its input and scratch space.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use MIME::Base64;
use RegistryTest;

my ($bin, $sanitized) = eval {
    build_unit('manifest_test', 'ngx_http_registry_manifest.c',
               'ngx_http_registry_json.c');
};
BAIL_OUT($@) unless $bin;
diag('built without sanitizers') unless $sanitized;

sub parse {
    my (@cases) = @_;
    my $in = test_dir() . '/manifest.in';
    spew($in, join('', map { unpack('H*', $_->[0]) . ' '
                             . unpack('H*', $_->[1]) . "\n" } @cases));
    my @lines = split /\n/, run_out("$bin < $in");
    is($?, 0, 'manifest_test ran (' . scalar(@cases) . ' documents)')
        or diag(join "\n", @lines[-5 .. -1]);
    return @lines;
}

sub b64url {
    (my $s = encode_base64($_[0], '')) =~ tr{+/}{-_};
    $s =~ s/=+$//;
    return $s;
}

my $oci = 'application/vnd.oci.image.manifest.v1+json';
my $index = 'application/vnd.oci.image.index.v1+json';
my $s1 = 'application/vnd.docker.distribution.manifest.v1+prettyjws';
my $s1u = 'application/vnd.docker.distribution.manifest.v1+json';
my $list = 'application/vnd.docker.distribution.manifest.list.v2+json';
my $v2 = 'application/vnd.docker.distribution.manifest.v2+json';
my $art = 'application/vnd.oci.artifact.manifest.v1+json';

# a schema 1 manifest as libtrust writes it: the payload, "signatures"
# spliced in before its last "\n}"
sub jws {
    my (%o) = @_;
    my $payload = "{\n   \"schemaVersion\": 1,\n   \"name\": \"a/b\"\n}";
    my $len = $o{len} // length($payload) - 2;
    my $tail = $o{tail} // "\n}";
    my $protected = $o{protected}
                    // b64url(encode_json({ formatLength => $len + 0,
                                            formatTail => b64url($tail),
                                            time => '2026-01-01T00:00:00Z' }));
    my $sigs = $o{sigs} // "[{\"signature\": \"x\", \"protected\": "
                           . "\"$protected\"}]";
    return substr($payload, 0, length($payload) - 2)
           . ",\n   \"signatures\": $sigs\n}";
}

# a schema 1 manifest built from a payload as libtrust builds it
# (PrettySignature): cut before the white space ahead of the last "}",
# the signatures spliced in there; or altered as an upstream might
sub libtrust {
    my ($payload, %o) = @_;
    my $cut = rindex($payload, '}');
    $cut-- while $cut > 0 && substr($payload, $cut - 1, 1) =~ /\s/;
    my $len = $o{len} // $cut;
    my $tail = $o{tail} // substr($payload, $cut);
    my $protected = b64url(encode_json({ formatLength => $len + 0,
                                         formatTail => b64url($tail) }));
    my $sigs = $o{sigs} // qq([{"signature":"x","protected":"$protected"}]);
    my $key = $o{key} // 'signatures';
    my $head = substr($payload, 0, $cut);
    # the reviewer's forgery: any body, the payload all in the tail
    return qq({"a":1,"signatures":[{"protected":")
           . b64url(encode_json({ formatLength => 0,
                                  formatTail => b64url($payload) }))
           . '"}]}' if $o{forge};
    return $head . ($o{before} // '') . ",\n   \"$key\": $sigs\n"
           . ($o{after} // '') . substr($payload, $cut) if $o{indent};
    return $head . ($o{before} // '') . qq(,"$key":$sigs) . ($o{after} // '')
           . substr($payload, $cut);
}

my $plen = length("{\n   \"schemaVersion\": 1,\n   \"name\": \"a/b\"\n}") - 2;

my @table = (
    [$oci, qq({"schemaVersion":2,"mediaType":"$oci"}), 'ok'],
    [$oci, qq({"schemaVersion":2}), 'shape'],
    [$oci, qq({"config":{"mediaType":"x"},"layers":[{"mediaType":"y"}]}),
     'ok'],
    [$oci, qq({"mediaType":"$index"}),
     'declined ' . unpack('H*', $index)],
    [$oci, qq({"MEDIATYPE":"$index"}), 'declined ' . unpack('H*', $index)],
    [$oci, qq({"media\\u0054ype":"$index"}),
     'declined ' . unpack('H*', $index)],
    [$oci, qq({"mediaType":"$oci","mediaType":"x"}), 'declined 78'],
    [$oci, qq({"mediaType":"application\\/vnd.oci.image.manifest.v1+json"}),
     'ok'],
    [$oci, qq({"mediaType":null}), 'declined 6e756c6c'],
    [$oci, qq({"mediaTypes":"x","xmediaType":"y","config":{}}), 'ok'],
    [$oci, qq({"mediaType":"\\udc00"}), 'declined 5c7564633030'],
    [$oci, '', 'error'],
    [$oci, '[]', 'error'],
    [$oci, '{"a":', 'error'],
    [$oci, qq({"schemaVersion":2} x), 'error'],
    # schema 1
    [$s1, jws(), "ok jws $plen " . unpack('H*', "\n}")],
    [$s1u, jws(), "ok jws $plen " . unpack('H*', "\n}")],
    [$oci, jws(), 'shape'],
    [$s1, qq({"schemaVersion":1}), 'ok'],
    [$s1, jws(sigs => '[]'), 'ok'],
    [$s1, jws(tail => ''), 'error'],
    [$s1, jws(len => 0), 'error'],
    [$s1, jws(len => 100000), 'error'],
    [$s1, jws(len => -1), 'error'],
    [$s1, jws(len => '1.5'), 'error'],
    [$s1, jws(protected => '!!'), 'error'],
    [$s1, jws(protected => b64url('{"formatLength":3}')), 'error'],
    [$s1, jws(protected => b64url('{"formatTail":"Cn0"}')), 'error'],
    [$s1, jws(protected => b64url('[1]')), 'error'],
    [$s1, jws(sigs => '[{"Protected": "' . b64url(encode_json(
         { formatLength => 3, formatTail => 'Cn0' })) . '"}]'),
     'error'],
    [$s1, jws(sigs => '[{"signature": "x"}]'), 'error'],
    [$s1, jws(sigs => '[1]'), 'error'],
    # a body that is not its payload with "signatures" added last
    [$s1, libtrust(qq({"schemaVersion":1,"name":"a"})), 'ok jws 29 7d'],
    [$s1, libtrust(qq({\n   "schemaVersion": 1,\n   "name": "a"\n}),
                   indent => 1),
     'ok jws 39 0a7d'],
    [$s1, libtrust(qq({"schemaVersion":1,"name":"a"}), forge => 1),
     'error'],
    [$s1, libtrust(qq({"schemaVersion":1,"name":"a"}), len => 0), 'error'],
    [$s1, libtrust(qq({"schemaVersion":1,"x":"}"}), len => 22), 'error'],
    [$s1, libtrust(qq({"schemaVersion":1,"name":"a"}), after => ',"x":1'),
     'error'],
    [$s1, libtrust(qq({"schemaVersion":1,"name":"a"}), before => ' x'),
     'error'],
    # (not "signatures" in the body, so no payload: the body's own digest)
    [$s1, libtrust(qq({"schemaVersion":1,"name":"a"}), key => 'Signatures'),
     'ok'],
    [$s1, libtrust(qq({"schemaVersion":1,"name":"a"}), tail => "\n}"),
     'error'],
    [$s1, libtrust(qq({"schemaVersion":2,"name":"a"})), 'error'],
    [$s1, libtrust(qq({"schemaVersion":"1","name":"a"})), 'error'],
    [$s1, libtrust(qq({"SchemaVersion":1,"name":"a"})), 'ok jws 29 7d'],
    [$s1, libtrust(qq({"schemaVersion":1,"schemaVersion":2})), 'error'],
    [$s1, libtrust(qq({"name":"a","b":"c"})), 'error'],
    [$s1, libtrust(qq({"schemaVersion":1,"name":"a"}), sigs => '[{]'),
     'error'],
    # no mediaType: the members say what it is
    [$index, qq({"schemaVersion":2,"manifests":[]}), 'ok'],
    [$index, qq({"schemaVersion":2,"MANIFESTS":[]}), 'ok'],
    [$index, qq({"schemaVersion":2,"config":{},"layers":[]}), 'shape'],
    [$index, qq({"manifests":[],"config":{}}), 'shape'],
    [$index, qq({"manifests":{}}), 'shape'],
    [$index, qq({"manifests":[],"manifests":null}), 'shape'],
    [$list, qq({"schemaVersion":2,"manifests":[]}), 'ok'],
    [$list, qq({"schemaVersion":2,"layers":[]}), 'shape'],
    [$oci, qq({"schemaVersion":2,"config":{},"layers":[]}), 'ok'],
    [$oci, qq({"schemaVersion":2,"config":{}}), 'ok'],
    [$oci, qq({"schemaVersion":2,"layers":[]}), 'shape'],
    [$oci, qq({"config":{},"layers":{}}), 'shape'],
    [$oci, qq({"config":{},"layers":[],"manifests":[]}), 'shape'],
    [$oci, qq({"config":{},"fsLayers":[]}), 'shape'],
    [$v2, qq({"schemaVersion":2,"config":{},"layers":[]}), 'ok'],
    [$v2, qq({"schemaVersion":2,"config":{}}), 'shape'],
    [$v2, qq({"schemaVersion":2,"manifests":[]}), 'shape'],
    [$art, qq({"blobs":[]}), 'ok'],
    [$art, qq({"subject":{}}), 'ok'],
    [$art, qq({"blobs":{}}), 'shape'],
    [$art, qq({"config":{},"layers":[]}), 'shape'],
    [$s1, qq({"fsLayers":[],"name":"a"}), 'ok'],
    [$s1, qq({"name":"a"}), 'shape'],
    [$s1, qq({"schemaVersion":2,"config":{},"layers":[]}), 'shape'],
    [$s1, qq({"schemaVersion":1,"manifests":[]}), 'shape'],
    [$oci, qq({"mediaType":"$oci","manifests":[]}), 'ok'],
);

my @got = parse(map { [$_->[0], $_->[1]] } @table);
for my $i (0 .. $#table) {
    (my $show = $table[$i][1]) =~ s/\n\s*/ /g;
    $show = substr($show, 0, 70);
    is($got[$i], $table[$i][2], "$table[$i][0]: $show");
}

# mutated manifests: no crash, no access outside the buffers (ASan), and
# a head never longer than the body
my @seeds = ([$s1, jws()],
             [$oci, qq({"schemaVersion":2,"mediaType":"$oci","config":)
                    . qq({"mediaType":"x","digest":"sha256:aa","size":7},)
                    . qq("layers":[{"size":1}],"annotations":{"k":"v"}})]);
my @alphabet = (split(//, q({}[]",:.-+eE0123456789 \\/nrtfalsu_=)),
                '\u0054', 'mediaType', 'signatures', 'protected');
srand(20261130);
my @mut;
for my $n (1 .. 20000) {
    my ($type, $d) = @{ $seeds[$n % 2] };
    push @mut, [$type, mutate($d, $n, @alphabet)];
}
my @verdict = parse(@mut);
is(scalar @verdict, scalar @mut, 'a verdict for every mutated manifest');
my @bad = grep { $verdict[$_] !~ /^(ok|ok jws \d+ [0-9a-f]*|declined [0-9a-f]*|shape|error)$/
                 || ($verdict[$_] =~ /^ok jws (\d+)/
                     && $1 > length $mut[$_][1]) } 0 .. $#verdict;
is(scalar @bad, 0, 'each of them well formed and within its body')
    or diag(join "\n", map { "$verdict[$_]: $mut[$_][1]" } @bad[0 .. 4]);
my %count;
$count{/^(ok jws|ok|declined|shape|error)/ ? $1 : '?'}++ for @verdict;
diag(join ', ', map { "$_: $count{$_}" } sort keys %count);

done_testing();
