% rebase('layout.tpl', title=T('record_title'), lang=page_lang, scripts=['print.js'])
% c = facts.controller
% missing = T('not_filled')
% include('privacy_langs.tpl')
<article class="record">
<h1>{{T('record_title')}}</h1>
<p class="subtitle">{{T('record_subtitle')}}</p>
% include('privacy_missing.tpl')
<p class="help">{{T('record_generated', date=generated, source=source, version=version)}}</p>
<p class="help no-print">{{T('record_why_private')}}</p>
<p class="no-print"><button type="button" id="print" hidden>{{T('print')}}</button></p>

<section aria-labelledby="r-controller-h">
  <h2 id="r-controller-h">1. {{T('rec_controller_h')}}</h2>
  <dl class="meta">
% for name in ('name', 'address', 'contact', 'dpo_contact'):
    <dt>{{T('field_' + name)}}</dt><dd{{!'' if c[name] or name == 'dpo_contact' else ' class="unfilled"'}}>{{c[name] or (T('no_dpo') if name == 'dpo_contact' else missing)}}</dd>
% end
  </dl>
</section>

<section aria-labelledby="r-purposes-h">
  <h2 id="r-purposes-h">2. {{T('rec_purposes_h')}}</h2>
  <dl class="meta">
% for name in ('purposes', 'legal_basis'):
    <dt>{{T('field_' + name)}}</dt><dd{{!'' if c[name] else ' class="unfilled"'}}>{{c[name] or missing}}</dd>
% end
  </dl>
</section>

<section aria-labelledby="r-persons-h">
  <h2 id="r-persons-h">3. {{T('rec_persons_h')}}</h2>
  <ul>
% for key in ('person_callers', 'person_called', 'person_staff'):
    <li>{{T(key)}}</li>
% end
  </ul>
</section>

<section aria-labelledby="r-data-h">
  <h2 id="r-data-h">4. {{T('rec_data_h')}}</h2>
  <ul>
% for key in ('data_audio', 'data_numbers', 'data_names', 'data_times', 'data_proof', 'data_evidence', 'data_donotrecord', 'data_accounts', 'data_log'):
    <li>{{T(key)}}</li>
% end
  </ul>
</section>

<section aria-labelledby="r-recipients-h">
  <h2 id="r-recipients-h">5. {{T('rec_recipients_h')}}</h2>
  <p{{!'' if c['recipients'] else ' class="unfilled"'}}>{{c['recipients'] or missing}}</p>
</section>

<section aria-labelledby="r-transfers-h">
  <h2 id="r-transfers-h">6. {{T('rec_transfers_h')}}</h2>
  <p>{{T('rec_transfers')}}</p>
</section>

<section aria-labelledby="r-retention-h">
  <h2 id="r-retention-h">7. {{T('rec_retention_h')}}</h2>
  <ul id="retention">
% for line in retention:
    <li>{{line}}</li>
% end
  </ul>
</section>

<section aria-labelledby="r-security-h">
  <h2 id="r-security-h">8. {{T('rec_security_h')}}</h2>
  <ul class="measures" id="measures">
% for m in measures:
    <li{{!' class="gap"' if m.warn else ''}}>{{m.text}}</li>
% end
  </ul>
  <h3 id="r-roles-h">{{T('rec_roles_h')}}</h3>
  <div class="table-wrap" role="region" aria-labelledby="r-roles-h" tabindex="0">
  <table>
    <thead><tr><th scope="col">{{T('role_col')}}</th><th scope="col">{{T('may_col')}}</th><th scope="col">{{T('accounts_col')}}</th></tr></thead>
    <tbody>
% for row in roles:
      <tr><th scope="row">{{row.label}}</th><td>{{'; '.join(row.may)}}</td><td>{{', '.join(row.accounts) or T('no_account')}}</td></tr>
% end
    </tbody>
  </table>
  </div>
  <p id="listeners">{{T('listeners', names=', '.join(listeners) or T('no_account'))}}</p>
</section>
</article>
