// Label and field selector parsing and matching.
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { isStatusError } from '../../src/apiserver/errors.ts';
import { matchFields, matchLabels, parseFieldSelector, parseLabelSelector } from '../../src/apiserver/selectors.ts';

const l = (s: string, labels: Record<string, string> | undefined) => matchLabels(parseLabelSelector(s), labels);

test('label selector operators', () => {
  const labels = { app: 'web', tier: 'front', 'example.com/team': 'a' };
  assert.ok(l('app=web', labels));
  assert.ok(l('app==web', labels));
  assert.not.ok(l('app!=web', labels));
  assert.ok(l('app!=db', labels));
  assert.ok(l('missing!=x', labels), '!= matches objects without the label');
  assert.ok(l('tier in (front, back)', labels));
  assert.not.ok(l('tier notin (front,back)', labels));
  assert.ok(l('missing notin (x)', labels));
  assert.ok(l('app', labels));
  assert.not.ok(l('!app', labels));
  assert.ok(l('!missing', labels));
  assert.ok(l('example.com/team=a,app in (web),!missing', labels));
  assert.ok(l('', undefined));
  assert.not.ok(l('app', undefined));
  assert.ok(l('app=', { app: '' }));
});

test('bad label selectors are 400s', () => {
  for (const s of ['app=web,', 'a b c', 'app in (x', '=x', 'app=web!', `${'k'.repeat(400)}=v`, 'x'.repeat(9000)]) {
    try {
      parseLabelSelector(s);
      assert.unreachable(`accepted ${s.slice(0, 40)}`);
    } catch (e) {
      assert.ok(isStatusError(e) && e.code === 400, `${s.slice(0, 40)}: ${e}`);
    }
  }
});

test('field selectors: only the declared fields; = and !=', () => {
  const allowed = new Set(['metadata.name', 'spec.nodeName']);
  const sel = parseFieldSelector('metadata.name=a,spec.nodeName!=n2', allowed, 'Pod');
  const fields = (name: string, node: string) => (f: string) => (f === 'metadata.name' ? name : node);
  assert.ok(matchFields(sel, fields('a', 'n1')));
  assert.not.ok(matchFields(sel, fields('a', 'n2')));
  assert.not.ok(matchFields(sel, fields('b', 'n1')));
  assert.ok(matchFields(parseFieldSelector('spec.nodeName==', allowed, 'Pod'), fields('x', '')));
  try {
    parseFieldSelector('status.phase=Running', allowed, 'Pod');
    assert.unreachable();
  } catch (e) {
    assert.ok(isStatusError(e) && e.code === 400 && /field label not supported: status.phase/.test(e.message));
  }
});

test.run();
