#!/usr/bin/perl

# The JSON tokenizer that reads what upstreams send (token answers,
# manifests): table tests of its tokens, then mutated documents whose
# verdict must be Perl's JSON::PP's, all through a build with
# AddressSanitizer and UBSan where the compiler has them, so that no
# document makes it read outside the input.

use strict;
use warnings;
use lib 't/lib';
use Test::More;
use JSON::PP;
use RegistryTest;

my ($bin, $sanitized) = eval {
    build_unit('json_test', 'ngx_http_registry_json.c');
};
BAIL_OUT($@) unless $bin;
diag('built without sanitizers') unless $sanitized;

# documents in, one line of tokens (or "error") out for each
sub tokenize {
    my (@docs) = @_;
    my $in = test_dir() . '/json.in';
    spew($in, join('', map { unpack('H*', $_) . "\n" } @docs));
    my @lines = split /\n/, run_out("$bin < $in");
    is($?, 0, 'json_test ran (' . scalar(@docs) . ' documents)')
        or diag(join "\n", @lines[-5 .. -1]);
    return @lines;
}

my @table = (
    ['{"token":"abc","expires_in":300}',
     'ok 0:O 1:S:token=abc/616263 1:N:expires_in=300 0:E'],
    ['  [1, -2.5e+3, true, false, null]  ',
     'ok 0:A 1:N:=1 1:N:=-2.5e+3 1:T:=true 1:F:=false 1:Z:=null 0:E'],
    ['"a\"b\\\\\/\u00e9\ud83d\ude00"',
     'ok 0:S=~a\"b\\\\\/\u00e9\ud83d\ude00/6122625c2fc3a9f09f9880'],
    ['{"a":{"b":[{"token":"x"}]},"token":"y"}',
     'ok 0:O 1:O:a 2:A:b 3:O: 4:S:token=x/78 3:E: 2:E: 1:E: '
     . '1:S:token=y/79 0:E'],
    ['{}', 'ok 0:O 0:E'],
    ['[]', 'ok 0:A 0:E'],
    ['0', 'ok 0:N=0'],
    ['"\u0000"', 'ok 0:S=~\u0000/!'],
    ['"\udc00"', 'ok 0:S=~\udc00/!'],
    ['"\ud800x"', 'ok 0:S=~\ud800x/!'],
);

# what must be refused
my @bad = ('', ' ', '{', '}', '[1,]', '{"a":1,}', '{"a" 1}', '{a:1}',
           '01', '-', '1.', '.5', '1e', '+1', 'tru', 'nul', 'True',
           "\"a\nb\"", '"\x"', '"\u12"', '"abc', '{"a":1}x', '[1 2]',
           '{"a":1 "b":2}', "\"\t\"", '[' x 33 . ']' x 33, "{\"a\":1}\0",
           '{"a":1}}', '[1]]', '{"a":[}', '{"a":]}', '"\\');

my @docs = ((map { $_->[0] } @table), @bad);
my @got = tokenize(@docs);

for my $i (0 .. $#table) {
    is($got[$i], $table[$i][1], "tokens of $table[$i][0]");
}

for my $i (0 .. $#bad) {
    (my $show = $bad[$i]) =~ s/([^ -~])/sprintf '\\x%02x', ord $1/ge;
    like($got[$#table + 1 + $i], qr/ error$/, "refused: $show");
}

ok(!grep(/STICKY|OUTSIDE/, @got), 'errors are final; no token outside its'
   . ' document');

# deep nesting: 32 levels are fine, 33 are not
my @deep = tokenize('[' x 32 . ']' x 32, '{"a":' x 32 . '1' . '}' x 32);
unlike($deep[0], qr/error/, '32 nested arrays');
unlike($deep[1], qr/error/, '32 nested objects');

# mutated documents: the same verdict as JSON::PP (strict, any root)
my $pp = JSON::PP->new->allow_nonref;
my @seeds = ('{"token":"abc.def","access_token":"x","expires_in":300,'
             . '"issued_at":"2024-01-01T00:00:00Z"}',
             '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.'
             . 'manifest.v1+json","config":{"digest":"sha256:aa","size":7},'
             . '"layers":[{"size":1,"urls":["a","b"]},{"size":-1.5e3}],'
             . '"annotations":{"k":"v\"\\\\\/\n"},"x":[true,false,null,[]]}');
my @alphabet = split //, q({}[]",:.-+eE0123456789 \\/nrtfalsu);
srand(20261130);
my @mut;
for my $n (1 .. 20000) {
    push @mut, mutate($seeds[$n % 2], $n, @alphabet);
}
my @verdict = tokenize(@mut);
my ($agree, $valid, @differ) = (0, 0);
for my $i (0 .. $#mut) {
    my $ours = $verdict[$i] =~ / error$/ ? 'error' : 'ok';
    my $theirs = eval { $pp->decode($mut[$i]); 1 } ? 'ok' : 'error';
    # JSON::PP also refuses lone surrogates, which the tokenizer leaves
    # to json_unescape (its "/!"); the alphabet above makes none
    $valid++ if $theirs eq 'ok';
    if ($ours eq $theirs) {
        $agree++;
    } else {
        push @differ, "$ours/$theirs: $mut[$i]";
    }
}
is(scalar @differ, 0, "$agree mutated documents ($valid of them valid): "
   . 'same verdict as JSON::PP')
    or diag(join "\n", @differ[0 .. ($#differ < 9 ? $#differ : 9)]);

done_testing();
