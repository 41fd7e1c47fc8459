#!/usr/bin/perl

# What tells the mirror a client may pull a repository and a digest is in
# it: the JWT "access" claim of a token answer, the descriptors of a
# manifest, the scope a client asks for, the form it asks with.  Table
# tests, then mutated tokens and manifests, all through a build with
# AddressSanitizer and UBSan where the compiler has them.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use MIME::Base64 qw(encode_base64);
use RegistryTest;

my ($bin, $sanitized) = eval {
    build_unit('grant_test', qw(ngx_http_registry_grant.c
                                ngx_http_registry_grammar.c
                                ngx_http_registry_json.c));
};
BAIL_OUT($@) unless $bin;
diag('built without sanitizers') unless $sanitized;

# [command, input] pairs in, one line each out
sub run {
    my (@cases) = @_;
    my $in = test_dir() . '/grant.in';
    spew($in, join('', map { "$_->[0] " . unpack('H*', $_->[1]) . "\n" }
                           @cases));
    my @lines = split /\n/, run_out("$bin < $in");
    is($?, 0, 'grant_test ran (' . scalar(@cases) . ' inputs)')
        or diag(join "\n", grep { defined } @lines[-5 .. -1]);
    return @lines;
}

sub b64url {
    (my $s = encode_base64($_[0], '')) =~ tr{+/}{-_};
    $s =~ s/=+\z//;
    return $s;
}

# a token as distribution's token server writes one (t/lib/tokenserver.pl):
# RS256, the signer's certificate in x5c, a signature of 256 bytes
my $header = b64url(encode_json({ alg => 'RS256', typ => 'JWT',
                                  x5c => [encode_base64('c' x 700, '')] }));
my $sig = b64url(join '', map { chr(($_ * 37) % 256) } 1 .. 256);

sub jwt_raw {
    my ($payload) = @_;
    return "$header." . b64url($payload) . ".$sig";
}

sub claims {
    my (@access) = @_;
    return { iss => 'test-issuer', sub => 'alice', aud => 'harbor.test',
             exp => 1700000300, nbf => 1699999990, iat => 1700000000,
             jti => '1700000000-4242', access => [@access] };
}

sub jwt {
    return jwt_raw(JSON::PP->new->canonical->encode($_[0]));
}

sub grant {
    my ($name, @actions) = @_;
    return { type => 'repository', name => $name, actions => [@actions] };
}

my $long = join('/', ('abcdefg') x 32);        # 255 bytes
my $too_long = "$long" . 'x';

my $tail = '"iss":"i","exp":1700000300}';

my @jwt = (
    [jwt(claims(grant('team-a/app', 'pull', 'push'),
                grant('team-a/tools', '*'),
                grant('team-b/secret', 'push'),
                { type => 'registry', name => 'catalog', actions => ['*'] },
                grant('Team-A/App', 'pull'),
                grant('team-a//app', 'pull'),
                grant('-bad/app', 'pull'),
                grant('public/app', 'delete', 'pull'))),
     'ok exp=1700000300 team-a/app team-a/tools public/app',
     'distribution-shaped: pull, *, push only, registry type, bad names'],
    [jwt(claims()), 'ok exp=1700000300', 'an empty grant: a refusal'],
    [jwt({ exp => 1700000300, access => undef }), 'ok exp=1700000300',
     'access null'],
    [jwt({ sub => 'alice' }), 'ok exp=0', 'neither exp nor access'],
    [jwt_raw('{"access":[{"type":"repository","name":"team\u002da/app",'
             . '"actions":["pull"]},{"type":"repository","name":'
             . '"team-b\/lib","actions":["\u0070ull"]},{"type":"repositor'
             . '\u0079","name":"x","actions":["*"]}],' . $tail),
     'ok exp=1700000300 team-a/app team-b/lib x',
     'escaped names, actions and type are unescaped'],
    [jwt_raw('{"ACCESS":[{"Type":"repository","NAME":"a/b","Actions":'
             . '["pull"]}],"n\u0061me":1,' . $tail),
     'ok exp=1700000300 a/b', 'member names in any case, as Go reads them'],
    [jwt_raw('{"access":[{"type":"Repository","name":"a/b","actions":'
             . '["pull"]},{"type":"repository","name":"c/d","actions":'
             . '["PULL","Pull","pul","pulls"]}],' . $tail),
     'ok exp=1700000300', 'values are exact: Repository, PULL'],
    [jwt_raw('{"access":[{"type":"repository","name":"a\u0000b","actions":'
             . '["pull"]},{"type":"repository","name":"\ud800","actions":'
             . '["pull"]},{"type":"repository","name":"ok/one","actions":'
             . '["pull"]}],' . $tail),
     'ok exp=1700000300 ok/one', 'names that cannot be unescaped: skipped'],
    [jwt(claims(grant($long, 'pull'), grant($too_long, 'pull'))),
     "ok exp=1700000300 $long", '255-byte name passes, 256 does not'],
    [jwt_raw('{"access":[{"name":"a/b","actions":["pull"]},{"type":'
             . '"repository","name":"c/d"},{"type":"repository","name":'
             . '"e/f","actions":null},{"type":"repository","actions":'
             . '["pull"]},{"type":"repository","name":"g/h","actions":[],'
             . '"class":"image"}],' . $tail),
     'ok exp=1700000300', 'no type, no actions, null, no name, []'],
    [jwt_raw('{"ext":{"access":[{"type":"repository","name":"a/b",'
             . '"actions":["pull"]}],"exp":5},"access":[{"type":'
             . '"repository","name":"c/d","actions":["pull"],"x":{"name":'
             . '"e/f","actions":["pull"]}}],' . $tail),
     'ok exp=1700000300 c/d', 'nested access, exp and name do not count'],
    [jwt_raw('{"access":[{"actions":["pull"],"name":"late/type",'
             . '"type":"repository"}],' . $tail),
     'ok exp=1700000300 late/type', 'member order does not matter'],

    # exp
    [jwt({ exp => 1.5 }), 'ok exp=0', 'exp 1.5: 0'],
    [jwt_raw('{"exp":1.7e9}'), 'ok exp=0', 'exp 1.7e9: 0'],
    [jwt({ exp => -5 }), 'ok exp=0', 'exp -5: 0'],
    [jwt({ exp => '1700000300' }), 'ok exp=0', 'exp a string: 0'],
    [jwt_raw('{"exp":0}'), 'ok exp=0', 'exp 0'],
    [jwt_raw('{"exp":99999999999999999999}'), 'ok exp=0',
     'exp past time_t: 0'],
    [jwt_raw('{"exp":9223372036854775807}'), 'ok exp=9223372036854775807',
     'the largest time_t'],

    # ambiguous or not the claims distribution decodes: refused
    [jwt_raw('{"access":[{"type":"repository","name":"a/b","actions":'
             . '["pull"]}],"access":[],' . $tail),
     'declined exp=0', 'access twice'],
    [jwt_raw('{"access":[],"Access":[{"type":"repository","name":"a/b",'
             . '"actions":["pull"]}],' . $tail),
     'declined exp=0', 'access and Access'],
    [jwt_raw('{"access":[],"acc\u0065ss":[],' . $tail),
     'declined exp=0', 'access and an escaped access'],
    [jwt_raw('{"exp":1,"access":[],"EXP":2}'), 'declined exp=0',
     'exp twice'],
    [jwt_raw('{"access":[{"type":"repository","name":"a/b","name":"c/d",'
             . '"actions":["pull"]}],' . $tail),
     'declined exp=0', 'name twice in an entry'],
    [jwt_raw('{"access":[{"type":"repository","type":"registry","name":'
             . '"a/b","actions":["pull"]}],' . $tail),
     'declined exp=0', 'type twice in an entry'],
    [jwt_raw('{"access":[{"type":"repository","name":"a/b","actions":'
             . '["push"],"Actions":["pull"]}],' . $tail),
     'declined exp=0', 'actions twice in an entry'],
    [jwt_raw('{"access":{"type":"repository","name":"a/b","actions":'
             . '["pull"]},' . $tail),
     'declined exp=0', 'access an object'],
    [jwt_raw('{"access":"repository:a/b:pull",' . $tail),
     'declined exp=0', 'access a string'],
    [jwt_raw('{"access":[1],' . $tail), 'declined exp=0',
     'an access entry a number'],
    [jwt_raw('{"access":[null],' . $tail), 'declined exp=0',
     'an access entry null'],
    [jwt_raw('{"access":[{"type":"repository","name":"a/b","actions":'
             . '"pull"}],' . $tail),
     'declined exp=0', 'actions a string'],
    [jwt_raw('{"access":[{"type":"repository","name":"a/b","actions":'
             . '["pull",1]}],' . $tail),
     'declined exp=0', 'an action a number'],
    [jwt_raw('{"access":[{"type":"repository","name":["a/b"],"actions":'
             . '["pull"]}],' . $tail),
     'declined exp=0', 'a name an array'],
    [jwt_raw('{"access":[{"type":1,"name":"a/b","actions":["pull"]}],'
             . $tail),
     'declined exp=0', 'a type a number'],

    # not a JWT, or a payload that is not a JSON object
    ['', 'declined exp=0', 'empty'],
    ["$header." . b64url('{"exp":1}'), 'declined exp=0', 'two parts'],
    [jwt({ exp => 1 }) . ".$sig", 'declined exp=0', 'four parts'],
    [".$sig." . b64url('{}'), 'declined exp=0', 'an empty header'],
    [jwt({ exp => 1 }) =~ s/\.[^.]*\z/./r, 'declined exp=0',
     'an empty signature'],
    ["$header..$sig", 'declined exp=0', 'an empty payload'],
    ["$header." . b64url('{"exp":1}') . "=.$sig", 'declined exp=0',
     'padding'],
    ["$header." . encode_base64('{"exp":1700000300,"a":">>>?"}', '')
     =~ s/=+\z//r . ".$sig", 'declined exp=0', 'base64, not base64url'],
    ["$header.e30x.$sig", 'declined exp=0', 'a payload of 4n+1 characters'],
    ["$header.e3!9.$sig", 'declined exp=0', 'a byte outside base64url'],
    ["$header.e30.$sig!", 'declined exp=0', 'a bad signature part'],
    [jwt_raw('[]'), 'declined exp=0', 'a payload array'],
    [jwt_raw('"x"'), 'declined exp=0', 'a payload string'],
    [jwt_raw('null'), 'declined exp=0', 'a payload null'],
    [jwt_raw('{"exp":1'), 'declined exp=0', 'a payload truncated'],
    [jwt_raw('{"exp":1}x'), 'declined exp=0', 'a payload with trailing bytes'],
    [jwt_raw('{"access":[{"type":"repository","name":"a/b","actions":'
             . '["pull"]}],"exp":1,}'),
     'declined exp=0', 'malformed after a grant: no handler call'],
    ['not-a-jwt', 'declined exp=0', 'one part'],
);

my @out = run(map { ['jwt', $_->[0]] } @jwt);
for my $i (0 .. $#jwt) {
    is($out[$i], $jwt[$i][1], "jwt: $jwt[$i][2]");
}

# the handler's NGX_ERROR ends the walk
my $two = jwt(claims(grant('a/one', 'pull'), grant('a/two', 'pull'),
                     grant('a/three', 'pull')));
is((run(['jwt-stop', $two]))[0], 'error exp=1700000300 a/one',
   'jwt: the handler failing stops the walk, NGX_ERROR');

# manifests

sub d { return 'sha256:' . ($_[0] x 64) }
sub desc {
    my ($digest, %more) = @_;
    return { mediaType => 'application/octet-stream', size => 7,
             digest => $digest, %more };
}

my $oci_image = 'application/vnd.oci.image.manifest.v1+json';
my $oci_index = 'application/vnd.oci.image.index.v1+json';
my $docker_v2 = 'application/vnd.docker.distribution.manifest.v2+json';
my $docker_list = 'application/vnd.docker.distribution.manifest.list.v2+json';
my $artifact = 'application/vnd.oci.artifact.manifest.v1+json';

my $canon = JSON::PP->new->canonical;
sub doc { return $canon->encode($_[0]) }

my $sha512 = 'sha512:' . ('ab' x 64);

# raw documents, for what an encoder would not write: an image manifest
# and an index opened with their mediaType, a descriptor
my $IMG = '{"mediaType":"' . $oci_image . '",';
my $IDX = '{"mediaType":"' . $oci_index . '",';
sub dg { return '{"digest":"' . d($_[0]) . '"}' }

my @manifest = (
    [doc({ schemaVersion => 2, mediaType => $oci_image,
           config => desc(d('c'), annotations => { digest => d('0') }),
           layers => [desc(d('1')), desc(d('2'),
                      annotations => { digest => d('9'),
                                       x => { digest => d('8') } }),
                      desc($sha512)],
           annotations => { digest => d('7') } }),
     'ok ' . join(' ', d('c'), d('1'), d('2'), $sha512),
     'OCI image manifest: config and layers, no annotation digest'],
    [doc({ schemaVersion => 2, mediaType => $oci_index,
           manifests => [desc(d('a'), platform => { os => 'linux' }),
                         desc(d('b'))],
           subject => desc(d('5')) }),
     'ok ' . join(' ', d('a'), d('b')), 'OCI index: manifests, not subject'],
    [doc({ schemaVersion => 2, mediaType => $docker_v2,
           config => desc(d('c')), layers => [desc(d('1')), desc(d('2'))] }),
     'ok ' . join(' ', d('c'), d('1'), d('2')), 'docker schema 2'],
    [doc({ schemaVersion => 2, mediaType => $docker_list,
           manifests => [desc(d('a'))] }),
     'ok ' . d('a'), 'docker manifest list'],
    [doc({ schemaVersion => 1, name => 'team-a/app', tag => '1',
           architecture => 'amd64',
           fsLayers => [{ blobSum => d('1') }, { blobSum => d('2') }],
           history => [{ v1Compatibility => '{"id":"x"}' }],
           signatures => [{ header => { alg => 'ES256' },
                            protected => 'e30', signature => 'x' }] }),
     'ok ' . join(' ', d('1'), d('2')), 'schema 1: fsLayers blobSum'],
    [doc({ mediaType => $artifact, artifactType => 'application/x.sbom',
           blobs => [desc(d('3')), desc(d('4'))],
           subject => desc(d('5')) }),
     'ok ' . join(' ', d('3'), d('4')), 'artifact: blobs, not subject'],
    [doc({ schemaVersion => 2, mediaType => $oci_image,
           artifactType => 'application/x.sig',
           config => desc(d('c')), layers => [desc(d('1'))],
           subject => desc(d('5')) }),
     'ok ' . join(' ', d('c'), d('1')), 'image manifest with a subject'],
    [doc({ schemaVersion => 2, config => desc(d('c')),
           layers => [desc(d('1'))] }),
     'ok ' . join(' ', d('c'), d('1')), 'no mediaType: an image by config'],
    [doc({ schemaVersion => 2, manifests => [desc(d('a'))] }),
     'ok ' . d('a'), 'no mediaType: an index by manifests'],
    [doc({ fsLayers => [{ blobSum => d('1') }] }), 'ok ' . d('1'),
     'no mediaType: schema 1 by fsLayers'],
    [doc({ config => desc(d('c')), manifests => [desc(d('a'))] }), 'ok',
     'no mediaType, config and manifests: nothing'],
    [doc({ blobs => [desc(d('3'))] }), 'ok',
     'no mediaType, blobs only: nothing'],
    [doc({ mediaType => $oci_index, manifests => [desc(d('a'))],
           layers => [desc(d('1'))], config => desc(d('c')),
           blobs => [desc(d('3'))], fsLayers => [{ blobSum => d('4') }] }),
     'ok ' . d('a'), 'an index: only manifests, whatever else it holds'],
    [doc({ mediaType => $docker_v2, config => desc(d('c')),
           layers => [desc(d('1'))], manifests => [desc(d('a'))] }),
     'ok ' . join(' ', d('c'), d('1')),
     'an image manifest: not its manifests'],
    [doc({ mediaType => 'application/vnd.example+json',
           config => desc(d('c')), layers => [desc(d('1'))] }),
     'ok', 'an unknown mediaType names nothing'],
    [doc({ mediaType => $oci_image, config => desc(d('c')),
           layers => [desc('sha256:' . ('a' x 63)), desc(d('A')),
                      desc('md5:' . ('a' x 32)), desc(d('1') . ' '),
                      desc('sha384:' . ('a' x 96)), desc(7), desc(undef),
                      { size => 1 }, 'sha256:' . ('e' x 64),
                      desc(d('2'))] }),
     'ok ' . join(' ', d('c'), d('2')),
     'invalid digests and non-descriptors skipped'],
    [doc({ mediaType => $docker_v2, config => desc(d('c')),
           layers => [desc(d('1'), urls => ['https://mcr.example/x']),
                      desc(d('2'), urls => []), desc(d('3'), urls => undef),
                      desc(d('4'), urls => 'https://x'),
                      desc(d('6'), urls => [undef])] }),
     'ok ' . join(' ', d('c'), d('2'), d('3')),
     'a foreign layer (urls) is no proof'],
    [$IMG . '"conf\u0069g":{"digest":"'
     . d('c') . '"},"LAYERS":[{"Digest":"' . d('1') . '"},{"digest":"sha256'
     . '\u003a' . ('2' x 64) . '"}]}',
     'ok ' . join(' ', d('c'), d('1')),
     'member names in any case and escaped; an escaped digest skipped'],
    [$IMG . '"mediaType":"' . $oci_image . '","config":' . dg('c') . '}',
     'ok ' . d('c'), 'the same mediaType twice'],
    ['{"schemaVersion":2,"mediaType":"application\/vnd.oci.image.index.v1'
     . '+json","manifests":[' . dg('a') . ']}',
     'ok ' . d('a'), 'an escaped mediaType'],
    [$IMG . '"config":' . dg('c') . ',"layers":[[' . dg('1') . ']],'
     . '"x":[' . dg('2') . '],"subject":' . dg('5') . '}',
     'ok ' . d('c'), 'nested arrays and other members not read'],
    [$IMG . '"config":[' . dg('c') . '],"layers":' . dg('1') . '}',
     'ok', 'config an array, layers an object: not descriptors'],

    # ambiguous or not JSON: refused, the handler never called
    [$IMG . '"config":' . dg('c') . ',"layers":[' . dg('1')
     . '],"layers":[]}',
     'declined', 'layers twice'],
    [$IMG . '"config":' . dg('c') . ',"layers":[],"Layers":[' . dg('1')
     . ']}',
     'declined', 'layers and Layers'],
    [$IMG . '"config":' . dg('c') . ',"config":' . dg('d') . '}',
     'declined', 'config twice'],
    [$IDX . '"manifests":[{"digest":"' . d('a')
     . '","digest":"' . d('b') . '"}]}',
     'declined', 'a digest twice in a descriptor'],
    [$IDX . '"manifests":[{"digest":"' . d('a')
     . '","DIGEST":"' . d('b') . '"}]}',
     'declined', 'digest and DIGEST in a descriptor'],
    [$IDX . '"manifests":[' . dg('a') . '],"mediaType":"' . $oci_image . '"}',
     'declined', 'two mediaTypes that differ'],
    ['{"mediaType":2,"manifests":[]}', 'declined', 'a mediaType not a string'],
    [$IDX . '"manifests":[' . dg('a') . '],', 'declined', 'truncated'],
    [$IDX . '"manifests":[' . dg('a') . ',]}', 'declined', 'a trailing comma'],
    [$IDX . '"manifests":[' . dg('a') . ']}}', 'declined', 'trailing bytes'],
    ['[' . dg('a') . ']', 'declined', 'an array'],
    ['', 'declined', 'empty'],
    [$IDX . '"manifests":[{"digest":"' . d('a') . "\n\"}]}", 'declined',
     'a raw newline in a string'],
);

@out = run(map { ['manifest', $_->[0]] } @manifest);
for my $i (0 .. $#manifest) {
    is($out[$i], $manifest[$i][1], "manifest: $manifest[$i][2]");
}

is((run(['manifest-stop', $manifest[2][0]]))[0], 'error ' . d('c'),
   'manifest: the handler failing stops the walk, NGX_ERROR');

# scopes, as clients write them (already unescaped from the query)

my @scope = (
    ['repository:team-a/app:pull', 'ok 1 team-a/app'],
    ['repository:team-a/app:pull,push', 'ok 1 team-a/app'],
    ['repository:team-a/app:push,pull', 'ok 1 team-a/app'],
    ['repository:team-a/app:push', 'ok 0 team-a/app'],
    ['repository:team-a/app:delete,push', 'ok 0 team-a/app'],
    ['repository:team-a/app:*', 'ok 1 team-a/app'],
    ['repository:reg.example:5000/a/b:pull', 'ok 1 reg.example:5000/a/b'],
    ['repository:127.0.0.1:5000/team-a/app:pull,push',
     'ok 1 127.0.0.1:5000/team-a/app'],
    ['repository:harbor.test/team-a/app:pull', 'ok 1 harbor.test/team-a/app'],
    ['repository:a:pulls', 'ok 0 a'],
    ['repository:reg.example:5000/a/b', 'declined'],
    ['repository:team-a/app', 'declined'],
    ['repository:team-a/app:', 'declined'],
    ['repository::pull', 'declined'],
    [':repository:a:pull', 'declined'],
    ['repository:team-a/app:pull,', 'declined'],
    ['repository:team-a/app:,pull', 'declined'],
    ['repository:team-a/app:pull,,push', 'declined'],
    ['repository:team-a/app:PULL', 'declined'],
    ['repository:team-a/app:pull push', 'declined'],
    ['repository:a b:pull', 'declined'],
    ["repository:a\tb:pull", 'declined'],
    ["repository:a\x{e9}:pull", 'declined'],
    ['registry:catalog:*', 'declined'],
    ['repository(plugin):a/b:pull', 'declined'],
    ['Repository:a/b:pull', 'declined'],
    ['repository:', 'declined'],
    ['repository', 'declined'],
    ['', 'declined'],
    ['repository:team-a/app:pull repository:team-b/x:pull', 'declined'],
);

@out = run(map { ['scope', $_->[0]] } @scope);
for my $i (0 .. $#scope) {
    (my $show = $scope[$i][0]) =~ s/([^ -~])/sprintf '\\x%02x', ord $1/ge;
    is($out[$i], $scope[$i][1], "scope: '$show'");
}

# forms and query strings

my @form = (
    ['grant_type=password&username=alice&password=&service=harbor.test'
     . '&scope=repository%3Ateam-a%2Fapp%3Apull&client_id=docker'
     . '&access_type=offline',
     '[grant_type]=[password] [username]=[alice] [password]=[] '
     . '[service]=[harbor.test] [scope]=[repository%3Ateam-a%2Fapp%3Apull] '
     . '[client_id]=[docker] [access_type]=[offline] done'],
    ['grant_type=refresh_token&refresh_token=abc.def.ghi',
     '[grant_type]=[refresh_token] [refresh_token]=[abc.def.ghi] done'],
    ['a=1&&b=2&', '[a]=[1] [b]=[2] done'],
    ['&&a=1', '[a]=[1] done'],
    ['offline_token&x=y=z', '[offline_token]=[] [x]=[y=z] done'],
    ['=v&k=', '[]=[v] [k]=[] done'],
    ['a+b=c%26d', '[a+b]=[c%26d] done'],
    ['', 'done'],
    ['&&&', 'done'],
    ['=', '[]=[] done'],
    ['x', '[x]=[] done'],
);

@out = run(map { ['form', $_->[0]] } @form);
for my $i (0 .. $#form) {
    is($out[$i], $form[$i][1], "form: '$form[$i][0]'");
}

# mutated payloads and tokens: no read outside the input, no handler call
# before a refusal, and every payload JSON::PP refuses is refused
srand(20261130);
my @alphabet = split //, q({}[]",:.-+eE0123456789 \\/nrtfalsu*);
my $payload = $canon->encode(claims(grant('team-a/app', 'pull', 'push'),
                                    grant('public/app', '*'),
                                    grant('team-b/x', 'push')));
my $mdoc = $manifest[0][0];
my $pp = JSON::PP->new->allow_nonref;
my (@cases, @json);
for my $n (1 .. 6000) {
    my $p = mutate($payload, $n, @alphabet);
    push @cases, ['jwt', jwt_raw($p)];
    push @json, $p;
    push @cases, ['jwt', mutate(jwt_raw($payload), $n,
                                split //, 'AZaz09-_.=+/')];
    push @json, undef;
    my $m = mutate($mdoc, $n, @alphabet);
    push @cases, ['manifest', $m];
    push @json, $m;
}
@out = run(@cases);
is(scalar @out, scalar @cases, 'an answer for every mutated input');
my @bad = grep { /OUTSIDE|CALLED|OTHER/ } @out;
is(scalar @bad, 0, 'no name outside its buffer, no handler call before a '
   . 'refusal') or diag(join "\n", @bad[0 .. ($#bad < 4 ? $#bad : 4)]);
my ($refused, @wrong) = (0);
for my $i (0 .. $#cases) {
    next unless defined $json[$i];
    next if eval { $pp->decode($json[$i]); 1 };
    $refused++;
    push @wrong, "$out[$i]: $json[$i]" unless $out[$i] =~ /^declined/;
}
is(scalar @wrong, 0, "$refused mutated documents JSON::PP refuses: "
   . 'all declined') or diag(join "\n", @wrong[0 .. ($#wrong < 4 ? $#wrong
                                                               : 4)]);

done_testing();
