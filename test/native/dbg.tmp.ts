import { Cluster, appliedData } from './raft-harness.ts';
const c = new Cluster([1, 2, 3]);
const l = c.elect();
c.isolate(l);
for (let i = 0; i < 40; i++) {
  c.tick(1);
  console.log(i, [...c.members.values()].map((m) => { const s = m.node.status(); return `${m.id}:${s.role[0]}t${s.term}l${s.lead}`; }).join(' '));
}
const d = new Cluster([1, 2, 3]);
const dl = d.elect();
d.node(dl).proposeConfChange({ changes: [{ type: 'addLearner', nodeId: 4 }] });
d.stabilize();
console.log(d.node(dl).status().confState, d.get(dl).confStates, d.get(dl).applied);
