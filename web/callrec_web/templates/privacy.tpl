% rebase('layout.tpl', title=T('notice_title'), lang=page_lang, scripts=[])
% c = facts.controller
% missing = T('not_filled')
% include('privacy_langs.tpl')
<h1>{{T('notice_title')}}</h1>
% include('privacy_missing.tpl')
<p>{{T('notice_intro', controller=c['name'] or T('this_office'))}}</p>

<section aria-labelledby="who-h">
  <h2 id="who-h">{{T('who_h')}}</h2>
  <dl class="meta">
% for name in ('name', 'address', 'contact'):
    <dt>{{T('field_' + name)}}</dt><dd{{!'' if c[name] else ' class="unfilled"'}}>{{c[name] or missing}}</dd>
% end
    <dt>{{T('field_dpo_contact')}}</dt><dd>{{c['dpo_contact'] or T('no_dpo')}}</dd>
  </dl>
</section>

<section aria-labelledby="what-h">
  <h2 id="what-h">{{T('what_h')}}</h2>
  <ul>
% for key in ('what_audio', 'what_numbers', 'what_name', 'what_times', 'what_proof'):
    <li>{{T(key)}}</li>
% end
  </ul>
  <p>{{T('what_not')}}</p>
</section>

<section aria-labelledby="why-h">
  <h2 id="why-h">{{T('why_h')}}</h2>
  <dl class="meta">
% for name in ('purposes', 'legal_basis'):
    <dt>{{T('field_' + name)}}</dt><dd{{!'' if c[name] else ' class="unfilled"'}}>{{c[name] or missing}}</dd>
% end
  </dl>
</section>

<section aria-labelledby="retention-h">
  <h2 id="retention-h">{{T('retention_h')}}</h2>
  <p id="retention">{{facts.retention}}</p>
  <p>{{T('retention_hold')}}</p>
</section>

<section aria-labelledby="recipients-h">
  <h2 id="recipients-h">{{T('recipients_h')}}</h2>
  <p{{!'' if c['recipients'] else ' class="unfilled"'}}>{{c['recipients'] or missing}}</p>
  <p>{{T('transfers_none')}}</p>
</section>

<section aria-labelledby="refuse-h">
  <h2 id="refuse-h">{{T('refuse_h')}}</h2>
% if facts.refusal_key:
  <p id="refusal">{{T('refuse_key', key=facts.refusal_key)}}</p>
% else:
  <p id="refusal">{{T('refuse_no_key')}}</p>
% end
  <p>{{T('object')}}</p>
</section>

<section aria-labelledby="rights-h">
  <h2 id="rights-h">{{T('rights_h')}}</h2>
  <ul>
% for right in ('access', 'copy', 'rectification', 'erasure', 'restriction', 'objection'):
    <li>{{T('right_' + right)}}</li>
% end
  </ul>
  <h3>{{T('how_h')}}</h3>
  <p>{{T('how_contact')}}</p>
  <dl class="meta">
    <dt>{{T('field_contact')}}</dt><dd{{!'' if c['contact'] else ' class="unfilled"'}}>{{c['contact'] or missing}}</dd>
% if c['address']:
    <dt>{{T('field_address')}}</dt><dd>{{c['address']}}</dd>
% end
% if c['dpo_contact']:
    <dt>{{T('field_dpo_contact')}}</dt><dd>{{c['dpo_contact']}}</dd>
% end
  </dl>
</section>

<section aria-labelledby="complain-h">
  <h2 id="complain-h">{{T('complain_h')}}</h2>
  <p>{{T('complain')}}</p>
  <p{{!'' if c['supervisory_authority'] else ' class="unfilled"'}}>{{c['supervisory_authority'] or missing}}</p>
</section>

<p class="help">{{T('notice_generated')}}</p>
% if can('processing.record'):
<p class="no-print"><a href="/privacy/record?lang={{page_lang}}">{{T('record_link')}}</a></p>
% end
