#!/usr/bin/env python3
import sys,glob,re,os
def parse(f):
    L=open(f).read().split('\n'); out={}
    t=L[0]; load=L[1].split('load average:')[1].split(',')[0].strip()
    for l in L:
        m=re.match(r'\s+(\d)\s+(sqlite|postgresql)\s+(\d+)\s+([\d.]+)\s+([-\d.]+)\s+([-\d]+)\s+(\d+)\s+([\d.]+)\s+([-\d.]+)',l)
        if m: out[(m[1],m[2])]=m.groups()
        m=re.match(r'\s+pg/sqlite\s+([\d.]+)\s+([\d.]+)',l)
        if m: out.setdefault('ratio',[]).append(m[1])
    return t,load,out
labels=sys.argv[1:]
files=sorted(glob.glob('/tmp/pg6work/runs/*.txt'),key=os.path.getmtime)
for s in ('1','4'):
    print(f'senders {s}: label time load | pg acked/s relay db | sqlite acked/s | ratio | pg drained/s db')
    for f in files:
        lb=os.path.basename(f).rsplit('-',1)[0]
        if labels and lb not in labels: continue
        t,load,o=parse(f)
        if (s,'postgresql') not in o: continue
        p=o[(s,'postgresql')]; q=o[(s,'sqlite')]; r=o['ratio'][0 if s=='1' else 1]
        print(f'  {os.path.basename(f):12s} {t} {load:5s} | {p[2]:>6s} {p[3]:>4s} {p[4]:>5s} | {q[2]:>6s} | {r} | {p[6]:>6s} {p[8]:>5s}')
