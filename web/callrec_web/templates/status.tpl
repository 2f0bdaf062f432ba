% rebase('layout.tpl', title=_('Line status'), section='status', scripts=['status.js'])
% states = ['idle', 'ringing', 'dialling', 'announcing', 'recording', 'not_recorded', 'unknown']
% state = snap['state'] if snap['state'] in states else 'unknown'
% call, last, board = snap['call'], snap['last_call'], snap['board']
% # The daemon's sentences (faults) come as phrases, translated by linestatus.shown (which
% # /api/v1/status?lang= also gives the page's script, so the page keeps its language).
% from callrec_web.linestatus import shown
% def call_text(call):
%   if not call:
%     return t('st_none')
%   end
%   parts = [t('direction_' + call['direction'])] if call['direction'] else []
%   if call['answered'] is not None:
%     parts.append(t('st_answered') if call['answered'] else t('st_not_answered'))
%   end
%   if call['ring_count']:
%     parts.append(t('st_rings', n=int(call['ring_count'])))
%   end
%   if call['duration_s'] is not None:
%     parts.append(duration(call['duration_s']))
%   end
%   return ', '.join(parts)
% end
% def last_text(last):
%   if not last or not last['outcome']:
%     return t('st_none')
%   end
%   text = t('outcome_' + last['outcome'], last['outcome'])
%   if last['direction'] in ('in', 'out'):
%     text += ' (' + t('direction_' + last['direction']) + ')'
%   end
%   return text + (', ' + local_time(last['at'], True) if local_time(last['at']) else '')
% end
% def counts_text(counts):
%   parts = [words['counters'].get(k, k) + ' ' + str(v) for k, v in sorted(counts.items()) if v]
%   return ', '.join(parts) or t('st_none')
% end
% def clock_text(clock):
%   if not clock:
%     return '—'
%   end
%   return t('st_clock_sync' if clock['synchronised'] else 'st_clock_unsync', source=clock['source'] or '—')
% end
% def num(value):
%   return str(int(value)) if value is not None else '—'
% end
<h1>{{_('Line status')}}{{' – ' + snap['line'] if snap['line'] else ''}}</h1>
% words = shown(snap, _, t)
<section id="status" aria-labelledby="now-h" data-source="/api/v1/status?lang={{lang}}">
  <h2 id="now-h">{{_('Now')}}</h2>
  <dl class="meta">
    <dt>{{_('State')}}</dt>
    <dd><span data-field="state" class="state state-{{state}}">{{t('state_' + state)}}</span><span data-field="reason">{{': ' + words['reason'] if words['reason'] else ''}}</span></dd>
    <dt>{{_('Since')}}</dt>
    <dd><span data-field="since">{{local_time(snap['since'], True) or '—'}}</span> <span data-field="state_for">{{'(' + t('st_for', d=duration(snap['state_for_s'])) + ')' if snap['state_for_s'] is not None else ''}}</span></dd>
    <dt>{{_('Privacy button')}}</dt>
    <dd><span data-field="private">{{t('st_next_private', at=local_time(snap['next_call_private_until'], True)) if snap.get('next_call_private_until') else t('st_not_pressed')}}</span></dd>
    <dt>{{_('Recording light')}}</dt>
    <dd><span data-field="recording" class="led {{'led-on' if snap['recording'] else 'led-off'}}">{{t('st_on') if snap['recording'] else t('st_off')}}</span></dd>
    <dt>{{_('Current call')}}</dt>
    <dd><span data-field="call">{{call_text(call)}}</span></dd>
    <dt>{{_('Last call')}}</dt>
    <dd><span data-field="last_call">{{last_text(last)}}</span></dd>
  </dl>
  <h2 id="faults-h">{{_('Faults')}}</h2>
  <ul data-field="faults" class="faults" aria-labelledby="faults-h">
% for text in words['faults']:
    <li>{{text}}</li>
% end
  </ul>
  <p data-field="no-faults"{{!' hidden' if snap['faults'] else ''}}>{{_('No faults.')}}</p>
% clock = snap.get('clock')
  <p data-field="clock_warning" class="warning" role="status"{{!'' if clock and not clock['synchronised'] else ' hidden'}}>{{t('st_clock_warning')}}</p>
% if snap.get('config_pending'):
  <p data-field="config_pending" class="warning" role="status">{{_('A configuration change will apply when the call ends.')}}</p>
% end
% sip = snap.get('sip')
% if sip:
  <h2 id="sip-h">{{_('SIP line')}}{{' – ' + sip['line'] if sip['line'] else ''}}</h2>
  <dl class="meta" aria-labelledby="sip-h">
    <dt>{{_('Calls now')}}</dt>
    <dd><span data-field="sip_calls">{{num(sip['calls'])}}</span> ({{_('recording:')}} <span data-field="sip_recording">{{num(sip['recording'])}}</span>)</dd>
    <dt>{{_('Calls since start')}}</dt>
    <dd><span data-field="sip_outcomes">{{counts_text(sip['outcomes'])}}</span></dd>
    <dt>{{_('Signalling')}}</dt>
    <dd>{{_('received')}} <span data-field="sip_received">{{num(sip['messages']['received'])}}</span>, {{_('sent')}} <span data-field="sip_sent">{{num(sip['messages']['sent'])}}</span>; {{_('dropped:')}} <span data-field="sip_dropped">{{counts_text(sip['messages']['dropped'])}}</span></dd>
    <dt>{{_('Media packets')}}</dt>
    <dd>{{_('forwarded')}} <span data-field="sip_forwarded">{{num(sip['media']['forwarded'])}}</span>; {{_('ignored:')}} <span data-field="sip_ignored">{{counts_text(sip['media']['ignored'])}}</span></dd>
  </dl>
  <p class="help">{{_('"Stranger": from an address that is not the configured PBX or provider (a scanner, a misconfigured peer): never answered, never relayed.')}}</p>
% end
  <h2 id="hw-h">{{_('Appliance')}}</h2>
  <dl class="meta">
    <dt>{{_('Recorder')}}</dt>
    <dd><span data-field="running">{{t('st_running') if snap['running'] else (t('st_stopped') if snap['running'] is False else '—')}}</span></dd>
    <dt>{{_('HAT link')}}</dt>
    <dd><span data-field="mcu">{{(t('st_connected') + (' (' + board['mcu_version'] + ')' if board['mcu_version'] else '')) if board['mcu_connected'] else (t('st_lost') if board['mcu_connected'] is False else '—')}}</span></dd>
    <dt>{{_('Line audio')}}</dt>
    <dd><span data-field="audio">{{t('st_open') if board['audio_open'] else (t('st_not_open') if board['audio_open'] is False else '—')}}</span></dd>
    <dt>{{_('Clock')}}</dt>
    <dd><span data-field="clock">{{clock_text(clock)}}</span></dd>
    <dt>{{_('Board')}}</dt>
    <dd>{{board['backend'] or '—'}}</dd>
    <dt>{{_('Software')}}</dt>
    <dd>{{snap['version'] or '—'}}</dd>
% web = snap.get('web')
% if web:
    <dt>{{_('Web address')}}</dt>
    <dd>{{web['url'] or '—'}}{{' (HTTPS)' if web['tls'] else ''}}</dd>
%   if web['fingerprint']:
    <dt>{{_('Certificate SHA-256')}}</dt>
    <dd><code class="fingerprint" data-field="fingerprint">{{web['fingerprint']}}</code></dd>
%   end
% end
  </dl>
% if web and web['fingerprint']:
  <p class="help">{{_("The appliance's certificate is its own (self-signed): the first time a browser connects it warns. Compare the fingerprint it shows (certificate details, SHA-256) with the one above before accepting; if they differ, do not log in.")}}</p>
% end
% if web and web['warning']:
  <p class="warning" role="alert">{{web['warning']}}.</p>
% end
  <p class="help">{{_('Updated:')}} <span data-field="updated">{{local_time(snap['updated'], True) or '—'}}</span>. {{_('This page refreshes itself every 2 seconds when JavaScript is on; otherwise reload it.')}}</p>
  <p data-field="stale" class="warning" role="alert" hidden>{{_('Live updates stopped: your session has ended or the appliance does not answer. Reload the page.')}}</p>
</section>
<div id="labels" hidden>
% keys = ['state_' + s for s in states] + ['direction_in', 'direction_out', 'daemon_unreachable']
% keys += ['outcome_recorded', 'outcome_unanswered', 'outcome_abandoned', 'outcome_not_recorded', 'outcome_ended_during_announcement']
% keys += ['st_on', 'st_off', 'st_none', 'st_answered', 'st_not_answered', 'st_rings', 'st_for', 'st_connected', 'st_lost', 'st_open', 'st_not_open', 'st_running', 'st_stopped', 'st_next_private', 'st_not_pressed', 'st_clock_sync', 'st_clock_unsync']
% for key in keys:
  <span data-key="{{key}}">{{t(key)}}</span>
% end
</div>
